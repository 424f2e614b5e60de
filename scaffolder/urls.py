from django.urls import path

from scaffolder import views

app_name = "scaffolder"

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("<int:pk>/", views.template_form, name="form"),
    path("<int:pk>/preview/", views.template_preview, name="preview"),
    path("<int:pk>/dry-run/", views.template_dry_run, name="dry_run"),
    path("<int:pk>/refresh/", views.template_refresh, name="template_refresh"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run_retry"),
    path("runs/<int:pk>/discard/", views.run_discard, name="run_discard"),
]
