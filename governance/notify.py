"""Who hears about what: in-app notices, e-mail, and signed outgoing webhooks.

Recipients by event: approvers covering the request when it awaits them; the
requester on gates, decisions and applies; the whole risk team on overrides and
drift (bypassing never goes unnoticed). Delivery happens after the transaction
commits, so a rolled-back change notifies nobody.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from governance.models import Notification, Promotion, Status
from portal.models import PlatformRole, RoleGrant

logger = logging.getLogger(__name__)

EVENTS = ("request", "gates", "decision", "apply", "apply_failed", "rollback", "override", "drift")


def _approvers(p: Promotion) -> set[int]:
    grants = RoleGrant.objects.covering(team=p.model.team, risk_tier=p.model.risk_tier)
    return set(grants.values_list("user_id", flat=True)) - {p.requested_by_id}


def _risk_team() -> set[int]:
    return set(RoleGrant.objects.filter(role=PlatformRole.RISK_APPROVER).values_list("user_id", flat=True))


def _message(event: str, p: Promotion, actor) -> str:
    what = f"{p.model.name} v{p.model_version.version} → {p.environment} (#{p.pk})"
    who = actor.username if actor else "the portal"
    return {
        "request": f"{who} asked to promote {what}.",
        "gates": f"Gates finished for {what}: {p.get_status_display()}.",
        "decision": f"{who} voted on {what}: now {p.get_status_display()}.",
        "apply": f"Applied {what}.",
        "apply_failed": f"Could not apply {what}: {p.apply_error}",
        "rollback": f"Rolled back {p.model.name} in {p.environment} to v{p.model_version.version} (#{p.pk}).",
        "override": f"BREAK-GLASS: {who} let {what} past a failing gate: {p.override_reason}",
    }.get(event, f"{event}: {what}")


def recipients(event: str, p: Promotion) -> set[int]:
    requester = {p.requested_by_id} if p.requested_by_id else set()
    if event == "gates":
        return _approvers(p) if p.status == Status.AWAITING_APPROVAL else requester
    if event in ("override", "drift"):
        return _risk_team() | requester
    if event in ("decision", "apply", "apply_failed", "rollback"):
        voters = set(p.votes.values_list("approver_id", flat=True))
        return requester | voters
    return set()  # a new request: approvers hear once the gates pass


def notify(event: str, p: Promotion, *, actor=None, message: str | None = None) -> None:
    text = message or _message(event, p, actor)
    users = recipients(event, p) - ({actor.pk} if actor else set())
    url = p.get_absolute_url()
    Notification.objects.bulk_create([Notification(user_id=u, event=event, message=text, url=url) for u in users])
    emails = list(get_user_model().objects.filter(pk__in=users).exclude(email="").values_list("email", flat=True))
    payload = {
        "event": event,
        "message": text,
        "promotion": {
            "id": p.pk,
            "model": p.model.name,
            "version": p.model_version.version,
            "environment": p.environment,
            "status": p.status,
            "url": settings.SITE_URL.rstrip("/") + url,
        },
    }
    transaction.on_commit(lambda: _deliver(text, url, emails, payload))


def _deliver(text: str, url: str, emails: list[str], payload: dict) -> None:
    if emails:
        try:
            send_mail(
                subject=f"[ML Platform] {text[:120]}",
                message=f"{text}\n\n{settings.SITE_URL.rstrip('/')}{url}\n",
                from_email=None,
                recipient_list=emails,
            )
        except Exception:  # mail is best effort: the in-app notice and the audit trail are the record
            logger.exception("could not send a governance e-mail")
    from governance.webhooks import webhooks_send

    webhooks_send(payload)
