"""Register the golden-path templates (scaffolder/golden_paths) as file:// templates; idempotent."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.context import audit_context
from scaffolder.demo import golden_path_repos_dir, seed_golden_paths
from scaffolder.services.rendering import isolation


class Command(BaseCommand):
    help = (
        "Turn each golden path in scaffolder/golden_paths into a git repository under VAR_DIR and register it "
        "as a template (as the admin user). Running it again pins new commits only when the files changed."
    )

    def handle(self, *args, **options) -> None:
        if not getattr(settings, "CATALOG_ALLOW_FILE_LOCATIONS", False):
            raise CommandError("The golden paths are file:// repositories: set CATALOG_ALLOW_FILE_LOCATIONS=True.")
        admin = get_user_model().objects.filter(username="admin").first()
        if admin is None:
            raise CommandError("The demo needs the admin user: run `manage.py seed_demo` first.")
        with audit_context(user=admin, request_id="scaffolder-demo"):
            for template, what in seed_golden_paths(admin=admin):
                self.stdout.write(f"  template #{template.pk} {template.title}: {what}")
        found = isolation()
        self.stdout.write(
            self.style.SUCCESS(
                f"Golden paths in {golden_path_repos_dir()}; renders run in: {found.mode} ({found.detail})."
            )
        )
