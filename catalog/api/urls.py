from django.urls import path
from rest_framework.routers import DefaultRouter

from catalog.api import views
from catalog.api.locations import LocationViewSet

router = DefaultRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="catalog-project")
router.register("models", views.ModelViewSet, basename="catalog-model")
router.register("model-versions", views.ModelVersionViewSet, basename="catalog-model-version")
router.register("datasets", views.DatasetViewSet, basename="catalog-dataset")
router.register("features", views.FeatureViewSet, basename="catalog-feature")
router.register("deployments", views.DeploymentViewSet, basename="catalog-deployment")
router.register("locations", LocationViewSet, basename="catalog-location")

urlpatterns = [
    path("search/", views.SearchView.as_view(), name="catalog-search"),
    path("sync/mlflow/", views.SyncMlflowView.as_view(), name="catalog-sync-mlflow"),
    path("webhooks/mlflow/", views.MlflowWebhookView.as_view(), name="catalog-webhook-mlflow"),
    path("commits/<str:commit>/used-by/", views.CommitUsedByView.as_view(), name="catalog-commit-used-by"),
    *router.urls,
]
