"""Map the identity provider's groups to teams and platform roles at every SSO login.

``OIDC_GROUP_MAP`` lists ``<idp group>=team:<slug>:<member|maintainer>`` or
``<idp group>=role:<platform role>`` entries, comma-separated. Teams named in
the map are created when missing. With ``OIDC_SYNC_REMOVES`` (default on), a
membership or role that came from the map is removed when the group is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from portal.models import Membership, PlatformRole, RoleGrant, Team, TeamRole
from portal.services.audit import audit_record


@dataclass(frozen=True)
class GroupRule:
    group: str
    kind: str  # "team" or "role"
    target: str
    role: str = ""


def parse_group_map(entries: list[str]) -> list[GroupRule]:
    rules = []
    for entry in entries:
        group, sep, spec = entry.partition("=")
        parts = spec.split(":")
        if not sep or not group.strip():
            raise ImproperlyConfigured(f"OIDC_GROUP_MAP entry {entry!r}: expected '<group>=team:<slug>:<role>'.")
        if parts[0] == "team" and len(parts) == 3 and parts[2] in TeamRole.values:
            rules.append(GroupRule(group.strip(), "team", parts[1], parts[2]))
        elif parts[0] == "role" and len(parts) == 2 and parts[1] in PlatformRole.values:
            rules.append(GroupRule(group.strip(), "role", parts[1]))
        else:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_MAP entry {entry!r}: use team:<slug>:<member|maintainer> or role:<"
                + "|".join(PlatformRole.values)
                + ">."
            )
    return rules


def _groups_from(claims: dict) -> set[str]:
    claim = settings.OIDC_GROUPS_CLAIM
    value = claims.get(claim)
    if value is None and isinstance(claims.get("userinfo"), dict):
        value = claims["userinfo"].get(claim)
    if value is None and isinstance(claims.get("id_token"), dict):
        value = claims["id_token"].get(claim)
    if isinstance(value, str):
        return {value}
    return {str(v) for v in (value or [])}


def sso_sync_groups(*, user, claims: dict, rules: list[GroupRule] | None = None) -> None:
    rules = parse_group_map(settings.OIDC_GROUP_MAP) if rules is None else rules
    if not rules:
        return
    groups = _groups_from(claims)
    wanted_teams: dict[str, str] = {}
    wanted_roles: set[str] = set()
    for rule in rules:
        if rule.group not in groups:
            continue
        if rule.kind == "team":
            # maintainer wins over member when both groups are present
            if wanted_teams.get(rule.target) != TeamRole.MAINTAINER:
                wanted_teams[rule.target] = rule.role
        else:
            wanted_roles.add(rule.target)
    mapped_teams = {r.target for r in rules if r.kind == "team"}
    mapped_roles = {r.target for r in rules if r.kind == "role"}
    with transaction.atomic():
        for slug, role in wanted_teams.items():
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ").title()})
            membership, created = Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
            if created or membership.role != role:
                membership.role = role
                membership.save(update_fields=["role"])
                audit_record(
                    action="membership.sso_sync",
                    obj=membership,
                    after={"team": slug, "user": user.username, "role": role, "source": "sso"},
                )
        for role in wanted_roles:
            grant, created = RoleGrant.objects.get_or_create(user=user, role=role)
            if created:
                audit_record(
                    action="role_grant.sso_sync",
                    obj=grant,
                    after={"user": user.username, "role": role, "source": "sso"},
                )
        if settings.OIDC_SYNC_REMOVES:
            stale = Membership.objects.filter(user=user, team__slug__in=mapped_teams - set(wanted_teams))
            for membership in stale.select_related("team"):
                audit_record(
                    action="membership.sso_remove",
                    obj=membership,
                    before={"team": membership.team.slug, "user": user.username, "role": membership.role},
                )
                membership.delete()
            for grant in RoleGrant.objects.filter(user=user, role__in=mapped_roles - wanted_roles):
                audit_record(
                    action="role_grant.sso_remove", obj=grant, before={"user": user.username, "role": grant.role}
                )
                grant.delete()
    user.__dict__.pop("_portal_roles", None)
