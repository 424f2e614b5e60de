"""Register the demo descriptor repository (catalog/demo_descriptors) as a file:// location; idempotent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Location
from catalog.services.locations import location_refresh, location_register
from portal.context import audit_context
from portal.models import Team

SOURCE = Path(__file__).resolve().parents[2] / "demo_descriptors"
GIT_IDENTITY = ["-c", "user.name=Portal demo", "-c", "user.email=demo@example.com", "-c", "commit.gpgsign=false"]


def demo_repo_path() -> Path:
    return Path(settings.VAR_DIR) / "descriptor-repos" / "demo"


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *GIT_IDENTITY, *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise CommandError(f"git {args[0]} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def sync_demo_repo(repo: Path) -> str | None:
    """Copy the demo files into ``repo`` (a git repository, created if needed); commit if anything changed."""
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / ".git").exists():
        _git(repo, "init", "--quiet", "--initial-branch=main")
    shutil.copytree(SOURCE, repo, dirs_exist_ok=True)
    if not _git(repo, "status", "--porcelain").strip():
        return None
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", "Demo descriptors for the fraud team")
    return _git(repo, "rev-parse", "HEAD").strip()


class Command(BaseCommand):
    help = (
        "Copy catalog/demo_descriptors into a git repository under VAR_DIR, register it as a file:// location "
        "of team fraud (as the admin user) and refresh it inline. Idempotent. Run seed_demo first."
    )

    def handle(self, *args, **options) -> None:
        if not getattr(settings, "CATALOG_ALLOW_FILE_LOCATIONS", False):
            raise CommandError("The demo location is a file:// URL: set CATALOG_ALLOW_FILE_LOCATIONS=True first.")
        admin = get_user_model().objects.filter(username="admin").first()
        team = Team.objects.filter(slug="fraud").first()
        if admin is None or team is None:
            raise CommandError("The demo needs the admin user and team fraud: run `manage.py seed_demo` first.")
        repo = demo_repo_path()
        commit = sync_demo_repo(repo)
        self.stdout.write(f"  demo repository {'committed ' + commit[:12] if commit else 'unchanged'}")
        with audit_context(user=admin, request_id="descriptor-demo"):
            location = Location.objects.filter(url=f"file://{repo}").first()
            if location is None:
                location, _ = location_register(actor=admin, url=str(repo), team=team, enqueue=False)
                self.stdout.write(f"  location #{location.pk} registered")
            result = location_refresh(location)
        for error in result["errors"]:
            self.stdout.write(self.style.WARNING(f"  {error['file']}:{error['line']}: {error['message']}"))
        style = self.style.SUCCESS if result["status"] == "ok" else self.style.WARNING
        self.stdout.write(
            style(
                f"Descriptor location #{location.pk} ({location.url}): {result['status']}, "
                f"{location.entity_count} entities, {len(result['errors'])} errors."
            )
        )
