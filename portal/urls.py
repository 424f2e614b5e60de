from django.contrib import admin
from django.urls import include, path, re_path

from portal import views
from portal.api.views import not_found

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("teams/", views.team_list, name="team_list"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/members/<str:username>/", views.team_member_update, name="team_member_update"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/selftest/", views.job_selftest, name="job_selftest"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/export.jsonl", views.audit_export, name="audit_export"),
    path("catalog/", include("catalog.urls")),
    path("api/v1/catalog/", include("catalog.api.urls")),
    path("create/", include("scaffolder.urls")),
    path("git/", include("scaffolder.git_urls")),
    path("api/v1/scaffolder/", include("scaffolder.api.urls")),
    path("governance/", include("governance.urls")),
    path("api/v1/governance/", include("governance.api.urls")),
    path("api/v1/", include("portal.api.urls")),
    re_path(r"^api/v1/.*$", not_found),
    path("admin/", admin.site.urls),
]
