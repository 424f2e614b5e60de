"""The catalog's section of the home page."""

from __future__ import annotations

from catalog.models import Model
from catalog.permissions import can_read_catalog
from portal.home import HomeSection


def catalog_home_section(request) -> HomeSection | None:
    user = request.user
    if not can_read_catalog(user):
        return None
    team_ids = list(user.memberships.values_list("team_id", flat=True))
    models = Model.objects.filter(team_id__in=team_ids).select_related("team").order_by("-updated_at")[:8]
    return HomeSection(
        "catalog/_home.html",
        {"team_models": list(models), "model_count": Model.objects.count(), "has_team": bool(team_ids)},
    )
