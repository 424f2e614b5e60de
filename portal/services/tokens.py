"""API tokens: created (secret shown once), stored as a SHA-256 digest, revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken, Scope, Team
from portal.permissions import can_manage_team, is_platform_admin, require
from portal.services.audit import audit_record
from portal.services.teams import service_account_for

TOKEN_PREFIX = "mlp_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class CreatedToken:
    token: ApiToken
    secret: str


def _token_json(t: ApiToken) -> dict:
    return {
        "name": t.name,
        "user": t.user.username,
        "team": t.team.slug if t.team else None,
        "prefix": t.prefix,
        "scopes": t.scopes,
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
    }


def token_create(
    *,
    actor,
    name: str,
    scopes: Iterable[str] = (Scope.READ,),
    team: Team | None = None,
    user=None,
    expires_at: datetime | None = None,
    expires_in_days: int | None = None,
) -> CreatedToken:
    """Create a personal token (for ``actor``) or a team service-account token."""
    scopes = sorted({str(s) for s in scopes})
    unknown = set(scopes) - set(Scope.values)
    if not scopes or unknown:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(Scope.values)}")
    if team is not None:
        require(can_manage_team(actor, team), "Only the team's maintainers or platform admins create team tokens.")
        owner = service_account_for(team)
    else:
        owner = user or actor
        require(owner == actor or is_platform_admin(actor), "You can only create tokens for yourself.")
    if Scope.ADMIN in scopes:
        require(is_platform_admin(owner) or is_platform_admin(actor), "Only platform admins hold admin-scoped tokens.")
    if expires_at is None:
        days = settings.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
        expires_at = timezone.now() + timedelta(days=days) if days else None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name.strip(),
        user=owner,
        team=team,
        created_by=actor,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=digest(secret),
        scopes=scopes,
        expires_at=expires_at,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
        audit_record(action="token.create", obj=token, after=_token_json(token))
    return CreatedToken(token=token, secret=secret)


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    require(ApiToken.objects.visible_to(actor).filter(pk=token.pk).exists(), "You cannot revoke this token.")
    if token.revoked_at:
        return token
    before = _token_json(token)
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="token.revoke", obj=token, before=before, after=_token_json(token))
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The active token for a presented secret, or None. Records last use (throttled)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    wanted = digest(secret)
    token = ApiToken.objects.select_related("user", "team").filter(digest=wanted).first()
    if token is None or not hmac.compare_digest(token.digest, wanted) or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
