"""Who may read and write the catalog."""

from __future__ import annotations

from portal.models import Membership, TeamRole
from portal.permissions import is_platform_admin, require, user_roles


def can_read_catalog(user) -> bool:
    if not user or not user.is_authenticated:
        return False
    cached = getattr(user, "_catalog_reader", None)
    if cached is None:
        cached = bool(user_roles(user)) or Membership.objects.filter(user=user).exists()
        user._catalog_reader = cached
    return cached


def require_read(user) -> None:
    require(can_read_catalog(user), "The catalog is for members of a team or holders of a platform role.")


def can_write(user, team) -> bool:
    return is_platform_admin(user) or Membership.objects.filter(user=user, team=team).exists()


def can_delete(user, team) -> bool:
    return is_platform_admin(user) or Membership.objects.filter(user=user, team=team, role=TeamRole.MAINTAINER).exists()


def require_write(user, team) -> None:
    require(
        user is None or can_write(user, team),
        f"Only members of team {team.slug} (or platform admins) change its entries.",
    )


def require_delete(user, team) -> None:
    require(
        user is None or can_delete(user, team),
        f"Only maintainers of team {team.slug} (or platform admins) delete its entries.",
    )
