from django.urls import path

from catalog import views, views_locations

app_name = "catalog"

urlpatterns = [
    path("", views.search, name="search"),
    path("sync/mlflow/", views.sync_mlflow, name="sync_mlflow"),
    path("lineage-contract/", views.lineage_contract, name="lineage_contract"),
    path("models/", views.entity_list, {"kind": "model"}, name="model_list"),
    path("register/model/", views.model_edit, name="model_new"),
    path("register/feature/", views.feature_new, name="feature_new"),
    path("models/<str:name>/", views.model_detail, name="model_detail"),
    path("models/<str:name>/edit/", views.model_edit, name="model_edit"),
    path("models/<str:name>/versions/<int:version>/", views.model_version_detail, name="model_version_detail"),
    path("models/<str:name>/<str:tab>/", views.model_detail, name="model_tab"),
    path("projects/", views.entity_list, {"kind": "project"}, name="project_list"),
    path("projects/<str:name>/", views.project_detail, name="project_detail"),
    path("datasets/", views.entity_list, {"kind": "dataset"}, name="dataset_list"),
    path("datasets/<str:name>/", views.dataset_detail, name="dataset_detail"),
    path("features/", views.entity_list, {"kind": "feature"}, name="feature_list"),
    path("features/<str:name>/", views.feature_detail, name="feature_detail"),
    path("commits/<str:commit>/", views.commit_detail, name="commit_detail"),
    path("locations/", views_locations.location_list, name="location_list"),
    path("locations/<int:pk>/", views_locations.location_detail, name="location_detail"),
    path("locations/<int:pk>/refresh/", views_locations.location_refresh, name="location_refresh"),
]
