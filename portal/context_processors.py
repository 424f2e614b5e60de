from __future__ import annotations

from django.conf import settings

from portal.health import cached_health_report
from portal.permissions import user_roles


def portal(request) -> dict:
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    health = cached_health_report() if signed_in else None
    down = [name for name, c in (health or {}).get("checks", {}).items() if c["status"] != "ok"]
    return {
        "portal_roles": user_roles(user) if signed_in else [],
        "health_down": down,
        "portal_signup_open": settings.PORTAL_ALLOW_SIGNUP,
    }
