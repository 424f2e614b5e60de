from django.urls import path
from rest_framework.routers import DefaultRouter

from governance.api import views

router = DefaultRouter(trailing_slash=True)
router.register("promotions", views.PromotionViewSet, basename="governance-promotion")
router.register("thresholds", views.ThresholdViewSet, basename="governance-threshold")
router.register("approval-policies", views.ApprovalPolicyViewSet, basename="governance-approval-policy")

urlpatterns = [
    path("rollbacks/", views.RollbackView.as_view(), name="governance-rollback"),
    path("webhooks/", views.WebhookView.as_view(), name="governance-webhooks"),
    path("audit/export/", views.AuditExportView.as_view(), name="governance-audit-export"),
    path("audit/digests/<int:pk>/", views.AuditDigestView.as_view(), name="governance-audit-digest"),
    *router.urls,
]
