"""Job kind of descriptor locations: ``catalog.refresh_location`` (imported from CatalogConfig.ready)."""

from __future__ import annotations

from catalog.models import Location, LocationStatus
from catalog.services.locations import location_refresh, refresh_all_locations
from portal.services.jobs import JobContext, job_handler

__all__ = ["LocationRefreshFailed", "refresh_all_locations", "refresh_location"]


class LocationRefreshFailed(Exception):
    """The repository could not be read; the location records why (status "failed")."""


@job_handler("catalog.refresh_location")
def refresh_location(ctx: JobContext, *, location_id: int) -> dict:
    """Clone a location, validate its descriptors and upsert their entities; orphan what disappeared."""
    location = Location.objects.select_related("team", "created_by").filter(pk=location_id).first()
    if location is None:
        ctx.log(f"Location #{location_id} no longer exists; nothing to do.", level="warning")
        return {"location": location_id, "status": "gone"}
    result = location_refresh(location, ctx=ctx)
    if result["status"] == LocationStatus.FAILED:
        raise LocationRefreshFailed(result["errors"][0]["message"] if result["errors"] else "refresh failed")
    return result
