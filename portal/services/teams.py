"""Writes to teams, memberships and platform roles. Each records an audit event."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.models import Membership, RoleGrant, Team, TeamRole
from portal.permissions import can_manage_team, is_platform_admin, require
from portal.services.audit import audit_record, snapshot

User = get_user_model()


class Conflict(Exception):
    """The write would duplicate or contradict existing state (HTTP 409)."""


def team_create(*, actor, slug: str, name: str, description: str = "") -> Team:
    require(actor is None or is_platform_admin(actor), "Only platform admins create teams.")
    team = Team(slug=slug, name=name, description=description)
    team.full_clean()
    with transaction.atomic():
        team.save()
        audit_record(action="team.create", obj=team, after=snapshot(team))
    return team


def team_update(*, actor, team: Team, name: str | None = None, description: str | None = None) -> Team:
    require(actor is None or can_manage_team(actor, team), "Only the team's maintainers or platform admins edit it.")
    before = snapshot(team)
    if name is not None:
        team.name = name
    if description is not None:
        team.description = description
    team.full_clean()
    with transaction.atomic():
        team.save()
        audit_record(action="team.update", obj=team, before=before, after=snapshot(team))
    return team


def team_delete(*, actor, team: Team) -> None:
    require(actor is None or is_platform_admin(actor), "Only platform admins delete teams.")
    with transaction.atomic():
        audit_record(action="team.delete", obj=team, before=snapshot(team))
        team.delete()


def membership_set(*, actor, team: Team, user, role: str = TeamRole.MEMBER) -> Membership:
    """Add a user to a team, or change their role there."""
    require(
        actor is None or can_manage_team(actor, team), "Only the team's maintainers or platform admins manage members."
    )
    if role not in TeamRole.values:
        raise ValueError(f"role must be one of {', '.join(TeamRole.values)}")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
        before = snapshot(membership)
        if membership is None:
            membership = Membership.objects.create(team=team, user=user, role=role)
            action = "membership.create"
        elif membership.role != role:
            if membership.role == TeamRole.MAINTAINER and _is_last_maintainer(membership):
                raise Conflict("A team needs at least one maintainer; make another member a maintainer first.")
            membership.role = role
            membership.save(update_fields=["role"])
            action = "membership.update"
        else:
            return membership
        audit_record(action=action, obj=membership, before=before, after=_membership_json(membership))
    return membership


def membership_remove(*, actor, team: Team, user) -> None:
    require(
        actor is None or can_manage_team(actor, team) or actor == user,
        "Only the team's maintainers or platform admins remove members.",
    )
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
        if membership is None:
            return
        others = Membership.objects.filter(team=team, is_service_account=False).exclude(pk=membership.pk)
        if membership.role == TeamRole.MAINTAINER and _is_last_maintainer(membership) and others.exists():
            raise Conflict("A team with members needs at least one maintainer; promote another member first.")
        audit_record(action="membership.delete", obj=membership, before=_membership_json(membership))
        membership.delete()


def _is_last_maintainer(membership: Membership) -> bool:
    return not (
        Membership.objects.filter(team=membership.team, role=TeamRole.MAINTAINER, is_service_account=False)
        .exclude(pk=membership.pk)
        .exists()
    )


def _membership_json(m: Membership) -> dict:
    return {"team": m.team.slug, "user": m.user.username, "role": m.role, "service_account": m.is_service_account}


def role_grant_set(
    *, actor, user, role: str, teams: Iterable[Team] = (), max_risk_tier: int | None = None
) -> RoleGrant:
    require(actor is None or is_platform_admin(actor), "Only platform admins grant platform roles.")
    teams = list(teams)
    with transaction.atomic():
        grant, created = RoleGrant.objects.get_or_create(user=user, role=role)
        before = None if created else _grant_json(grant)
        grant.max_risk_tier = max_risk_tier
        grant.full_clean()
        grant.save()
        grant.teams.set(teams)
        audit_record(
            action="role_grant.create" if created else "role_grant.update",
            obj=grant,
            before=before,
            after=_grant_json(grant),
        )
    user.__dict__.pop("_portal_roles", None)
    return grant


def role_grant_revoke(*, actor, user, role: str) -> None:
    require(actor is None or is_platform_admin(actor), "Only platform admins revoke platform roles.")
    with transaction.atomic():
        grant = RoleGrant.objects.filter(user=user, role=role).first()
        if grant is None:
            return
        audit_record(action="role_grant.delete", obj=grant, before=_grant_json(grant))
        grant.delete()


def _grant_json(g: RoleGrant) -> dict:
    return {
        "user": g.user.username,
        "role": g.role,
        "teams": sorted(g.teams.values_list("slug", flat=True)),
        "max_risk_tier": g.max_risk_tier,
    }


def service_account_for(team: Team):
    """The team's CI identity: a user with no password, member of the team only."""
    username = f"svc-{team.slug}"
    user, created = User.objects.get_or_create(username=username, defaults={"email": ""})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(
        team=team, user=user, defaults={"role": TeamRole.MEMBER, "is_service_account": True}
    )
    return user


def user_create(*, actor, username: str, email: str = "", password: str | None = None, **extra):
    require(actor is None or is_platform_admin(actor), "Only platform admins create users.")
    user = User(username=username, email=email, **extra)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save()
        audit_record(action="user.create", obj=user, after={"username": username, "email": email})
    return user
