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
