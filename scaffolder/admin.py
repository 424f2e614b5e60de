"""Read-only views of templates and runs for operators; changes go through the services (and the audit trail)."""

from django.contrib import admin

from scaffolder.models import Run, Template


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(ReadOnly):
    list_display = ["title", "url", "ref", "subdirectory", "commit", "pinned_at"]
    search_fields = ["title", "url"]


@admin.register(Run)
class RunAdmin(ReadOnly):
    list_display = ["id", "name", "team", "template", "template_commit", "status", "created_by", "created_at"]
    list_filter = ["status", "team"]
    search_fields = ["name"]
