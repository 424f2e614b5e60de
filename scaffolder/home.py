"""The scaffolder's section of the home page."""

from __future__ import annotations

from catalog.permissions import can_read_catalog
from portal.home import HomeSection
from scaffolder.models import Run, Template


def scaffolder_home_section(request) -> HomeSection | None:
    user = request.user
    if not can_read_catalog(user):
        return None
    templates = list(Template.objects.order_by("title")[:4])
    runs = list(Run.objects.visible_to(user).filter(created_by=user).select_related("template")[:3])
    return HomeSection("scaffolder/_home.html", {"templates": templates, "runs": runs})


def project_panel(request, project) -> HomeSection | None:
    """On a catalog project page: whether it started on the golden path, and from which template commit."""
    run = Run.objects.filter(project=project).select_related("template").first()
    return HomeSection("scaffolder/_project_panel.html", {"run": run}) if run else None
