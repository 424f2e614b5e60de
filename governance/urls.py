from django.urls import path

from governance import views

app_name = "governance"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("promotions/", views.promotion_list, name="promotion_list"),
    path("promotions/new/", views.promotion_new, name="promotion_new"),
    path("promotions/<int:pk>/", views.promotion_detail, name="promotion_detail"),
    path("promotions/<int:pk>/approve/", views.promotion_decide, {"decision": "approve"}, name="promotion_approve"),
    path("promotions/<int:pk>/reject/", views.promotion_decide, {"decision": "reject"}, name="promotion_reject"),
    path("promotions/<int:pk>/withdraw/", views.promotion_withdraw, name="promotion_withdraw"),
    path("promotions/<int:pk>/recheck/", views.promotion_recheck, name="promotion_recheck"),
    path("promotions/<int:pk>/override/", views.promotion_override, name="promotion_override"),
    path("promotions/<int:pk>/retry-apply/", views.promotion_retry_apply, name="promotion_retry_apply"),
    path("models/<str:name>/rollback/", views.rollback, name="rollback"),
    path("notifications/", views.notifications, name="notifications"),
    path("audit/", views.audit, name="audit"),
    path("policy/", views.policy, name="policy"),
]
