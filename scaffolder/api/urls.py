from rest_framework.routers import DefaultRouter

from scaffolder.api.views import RunViewSet, TemplateViewSet

router = DefaultRouter(trailing_slash=True)
router.register("templates", TemplateViewSet, basename="scaffolder-template")
router.register("runs", RunViewSet, basename="scaffolder-run")

urlpatterns = router.urls
