"""Policy and drift: the thresholds teams may tighten, and environment aliases moved outside the portal."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.models import ModelVersion
from catalog.permissions import can_write
from governance.models import Direction, Drift, EvaluationThreshold, Promotion, Status
from governance.notify import notify
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record

# --- Thresholds ------------------------------------------------------------------------------------------------


def threshold_set(*, actor, team, task: str, metric: str, direction: str, value: float) -> EvaluationThreshold:
    """Platform admins set defaults (team=None); a team may tighten a default for itself, never loosen it."""
    if team is None:
        require(is_platform_admin(actor), "Only platform admins set the platform's default thresholds.")
    else:
        require(can_write(actor, team), f"Only members of team {team.slug} tighten its thresholds.")
        default = EvaluationThreshold.objects.filter(team__isnull=True, task__in=[task, "*"], metric=metric).first()
        candidate = EvaluationThreshold(task=task, metric=metric, direction=direction, value=value, team=team)
        if default and (default.direction != direction or not candidate.stricter_or_equal(default)):
            raise ValidationError(
                {
                    "value": f"A team may tighten the platform default ({default.metric} {default.direction} "
                    f"{default.value:g}) but never loosen it."
                }  # fmt: skip
            )
    if direction not in Direction.values:
        raise ValidationError({"direction": "Use >= or <=."})
    with transaction.atomic():
        row, _ = EvaluationThreshold.objects.update_or_create(
            task=task, metric=metric, team=team, defaults={"direction": direction, "value": value}
        )
        audit_record(action="threshold.set", obj=row, after={"rule": str(row), "team": team.slug if team else None})
    return row


# --- Drift -----------------------------------------------------------------------------------------------------


def drift_check() -> list[Drift]:
    """Compare each environment alias synced from MLflow with the last applied promotion. Returns new drifts."""
    latest: dict[tuple[int, str], Promotion] = {}
    for p in (
        Promotion.objects.filter(status=Status.APPLIED)
        .select_related("model_version", "model")
        .order_by("model_id", "environment", "-applied_at", "-id")
    ):
        latest.setdefault((p.model_id, p.environment), p)
    observed: dict[tuple[int, str], int] = {}
    for model_id, version, aliases in (
        ModelVersion.objects.filter(model_id__in={k[0] for k in latest})
        .exclude(aliases=[])
        .values_list("model_id", "version", "aliases")
    ):
        for alias in aliases:
            observed[(model_id, alias)] = version
    found = []
    for (model_id, env), p in latest.items():
        seen, expected = observed.get((model_id, env)), p.model_version.version
        open_drift = Drift.objects.filter(model_id=model_id, environment=env, resolved_at__isnull=True).first()
        if seen == expected:
            if open_drift:
                open_drift.resolved_at = timezone.now()
                open_drift.save(update_fields=["resolved_at"])
            continue
        if open_drift and open_drift.observed_version == seen:
            continue
        with transaction.atomic():
            if open_drift:
                open_drift.resolved_at = timezone.now()
                open_drift.save(update_fields=["resolved_at"])
            drift = Drift.objects.create(
                model=p.model, environment=env, expected_version=expected, observed_version=seen
            )
            audit_record(action="drift.detected", obj=drift, after={"message": drift.message})
        notify("drift", p, message=drift.message)
        found.append(drift)
    return found
