"""Who may do what, asked by querysets and services (never only by templates)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from portal.models.identity import Membership, PlatformRole, RoleGrant, Team, TeamRole


def user_roles(user) -> list[str]:
    if not user or not user.is_authenticated:
        return []
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = sorted(set(RoleGrant.objects.filter(user=user).order_by().values_list("role", flat=True)))
        if user.is_superuser and PlatformRole.PLATFORM_ADMIN not in cached:
            cached = sorted({*cached, PlatformRole.PLATFORM_ADMIN})
        user._portal_roles = cached
    return cached


def has_role(user, role: str) -> bool:
    return role in user_roles(user)


def is_platform_admin(user) -> bool:
    return has_role(user, PlatformRole.PLATFORM_ADMIN)


def team_role(user, team: Team) -> str | None:
    if not user or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def can_manage_team(user, team: Team) -> bool:
    return is_platform_admin(user) or team_role(user, team) == TeamRole.MAINTAINER


def require(condition: bool, message: str = "You do not have permission to do this.") -> None:
    if not condition:
        raise PermissionDenied(message)
