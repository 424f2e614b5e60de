"""Writes of the promotion workflow: request, gates, votes, override, apply, rollback.

Thresholds and drift live in ``governance.policy``.

Every state change is a conditional update or happens under a row lock, and
is audited; the jobs (gates, apply) are thin and call back in here.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Environment, Model, ModelVersion
from catalog.permissions import can_write, require_write
from governance.gates import GATES
from governance.models import (
    OPEN,
    Drift,
    GateResult,
    Promotion,
    Status,
    Vote,
)
from governance.notify import notify
from portal.models import RoleGrant
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record
from portal.services.jobs import JobContext, JobRetry, job_enqueue, job_handler
from portal.services.teams import Conflict

GATES_JOB = "governance.run_gates"
APPLY_JOB = "governance.apply"


def _state(p: Promotion) -> dict:
    return {"status": p.status, "version": p.model_version.version, "environment": p.environment}


# --- Request, withdraw, supersede ------------------------------------------------------------------------------


def promotion_request(
    *, actor, model_version: ModelVersion, environment: str, justification: str
) -> tuple[Promotion, bool]:
    """Ask to promote a version. An open identical request is returned instead of a new one (created=False)."""
    if environment not in Environment.values:
        raise ValidationError({"environment": f"Use one of: {', '.join(Environment.values)}."})
    if not (justification or "").strip():
        raise ValidationError({"justification": "Say why this version should go there: approvers read it."})
    model = model_version.model
    require(
        actor is not None and can_write(actor, model.team),
        f"Only members of team {model.team.slug} (or platform admins) request promotions of its models.",
    )
    existing = Promotion.objects.filter(model_version=model_version, environment=environment, status__in=OPEN).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            Model.objects.select_for_update().filter(pk=model.pk).first()  # one request at a time per model
            existing = Promotion.objects.filter(
                model_version=model_version, environment=environment, status__in=OPEN
            ).first()
            if existing:
                return existing, False
            promotion = Promotion.objects.create(
                model=model,
                model_version=model_version,
                environment=environment,
                justification=justification.strip(),
                requested_by=actor,
            )
            audit_record(action="promotion.request", obj=promotion, after=_state(promotion) | {"why": justification})
            for older in Promotion.objects.filter(model=model, environment=environment, status__in=OPEN).exclude(
                pk=promotion.pk
            ):
                before = _state(older)
                older.status, older.superseded_by = Status.SUPERSEDED, promotion
                older.save(update_fields=["status", "superseded_by", "updated_at"])
                audit_record(action="promotion.supersede", obj=older, before=before, after=_state(older))
            _start_gates(promotion, actor)
    except IntegrityError:  # a concurrent identical request won the race: return it
        return Promotion.objects.get(model_version=model_version, environment=environment, status__in=OPEN), False
    notify("request", promotion, actor=actor)
    return promotion, True


def _start_gates(promotion: Promotion, actor) -> None:
    promotion.gates_job = job_enqueue(
        kind=GATES_JOB,
        title=f"Gates for promotion #{promotion.pk}: {promotion.model.name} v{promotion.model_version.version} "
        f"→ {promotion.environment}",
        user=actor,
        team=promotion.model.team,
        target=promotion,
        params={"promotion_id": promotion.pk},
    )
    promotion.save(update_fields=["gates_job", "updated_at"])


def promotion_withdraw(*, actor, promotion: Promotion) -> Promotion:
    require(
        actor.pk == promotion.requested_by_id or is_platform_admin(actor),
        "Only the requester (or a platform admin) can withdraw a request.",
    )
    with transaction.atomic():
        if not Promotion.objects.filter(pk=promotion.pk, status__in=OPEN).update(
            status=Status.WITHDRAWN, updated_at=timezone.now()
        ):
            promotion.refresh_from_db()
            raise Conflict(
                f"Request #{promotion.pk} is {promotion.get_status_display()}; only open requests can be withdrawn."
            )
        audit_record(action="promotion.withdraw", obj=promotion, before=_state(promotion))
    promotion.refresh_from_db()
    return promotion


def promotion_recheck(*, actor, promotion: Promotion) -> Promotion:
    """Run the gates again on a blocked request (after a fix elsewhere, e.g. a feature pin)."""
    require(
        actor.pk == promotion.requested_by_id or can_write(actor, promotion.model.team),
        f"Only members of team {promotion.model.team.slug} re-check its requests.",
    )
    with transaction.atomic():
        if not Promotion.objects.filter(pk=promotion.pk, status=Status.BLOCKED).update(status=Status.CHECKING):
            raise Conflict("Only a blocked request can be checked again.")
        promotion.refresh_from_db()
        audit_record(action="promotion.recheck", obj=promotion, after=_state(promotion))
        _start_gates(promotion, actor)
    return promotion


# --- Gates -----------------------------------------------------------------------------------------------------


@job_handler(GATES_JOB)
def run_gates(ctx: JobContext, *, promotion_id: int) -> dict:
    promotion = Promotion.objects.select_related("model__team", "model_version", "requested_by").get(pk=promotion_id)
    if promotion.status != Status.CHECKING:
        ctx.log(f"Nothing to check: the request is {promotion.get_status_display()}.")
        return {"status": promotion.status}
    run = promotion.gate_runs + 1
    outcomes = {}
    for name, gate_class in GATES.items():
        with ctx.step(gate_class.title):
            outcome = gate_class().check(promotion)
            GateResult.objects.create(
                promotion=promotion,
                run=run,
                gate=name,
                title=gate_class.title,
                passed=outcome.passed,
                summary=outcome.summary,
                details=outcome.details,
            )
            ctx.log(
                f"{'passed' if outcome.passed else 'FAILED'}: {outcome.summary}",
                level="info" if outcome.passed else "warning",
            )
            outcomes[name] = outcome
    failed = [GATES[n].title for n, o in outcomes.items() if not o.passed]
    required = outcomes["risk_policy"].details.get("required_approvals", 1) if "risk_policy" in outcomes else 1
    with transaction.atomic():
        p = Promotion.objects.select_for_update().get(pk=promotion_id)
        if p.status != Status.CHECKING:
            return {"status": p.status}
        before = _state(p)
        p.gate_runs, p.required_approvals = run, required
        if failed and not p.override_reason:
            p.status = Status.BLOCKED
        elif required == 0:
            p.status, p.decided_at = Status.APPROVED, timezone.now()
        else:
            p.status = Status.AWAITING_APPROVAL
        p.save(update_fields=["gate_runs", "required_approvals", "status", "decided_at", "updated_at"])
        audit_record(
            action="promotion.gates",
            obj=p,
            before=before,
            after=_state(p) | {"run": run, "failed": failed, "required_approvals": required},
        )
        if p.status == Status.APPROVED:
            _start_apply(p, actor=p.requested_by)
    ctx.log(f"Result: {p.get_status_display()}" + (f" ({', '.join(failed)} failed)" if failed else "") + ".")
    notify("gates", p)
    return {"status": p.status, "failed": failed, "required_approvals": required}


# --- Decisions -------------------------------------------------------------------------------------------------


def promotion_decide(*, actor, promotion: Promotion, decision: str, comment: str = "") -> Promotion:
    """One approver's vote. Approved by the vote reaching the required count; rejected by the first reject."""
    if decision not in (Vote.APPROVE, Vote.REJECT):
        raise ValidationError({"decision": "approve or reject"})
    if decision == Vote.REJECT and not (comment or "").strip():
        raise ValidationError({"comment": "Say why you reject it: the requester needs to know what to fix."})
    with transaction.atomic():
        p = Promotion.objects.select_for_update().select_related("model__team", "model_version").get(pk=promotion.pk)
        if p.status != Status.AWAITING_APPROVAL:
            decided = f" on {p.decided_at:%Y-%m-%d %H:%M} UTC" if p.decided_at else ""
            raise Conflict(f"Request #{p.pk} is already {p.get_status_display()}{decided}; it cannot be decided again.")
        require(actor.pk != p.requested_by_id, "You cannot approve or reject your own request (separation of duties).")
        require(
            RoleGrant.objects.covering(team=p.model.team, risk_tier=p.model.risk_tier).filter(user=actor).exists(),
            f"Your risk-approver grant does not cover team {p.model.team.slug} at "
            f"{p.model.get_risk_tier_display()} risk.",
        )
        if Vote.objects.filter(promotion=p, approver=actor).exists():
            raise Conflict("You have already voted on this request; each approver votes once.")
        before = _state(p)
        vote = Vote.objects.create(promotion=p, approver=actor, decision=decision, comment=(comment or "").strip())
        approvals = Vote.objects.filter(promotion=p, decision=Vote.APPROVE).count()
        if decision == Vote.REJECT:
            p.status, p.decided_at, p.decision_comment = Status.REJECTED, timezone.now(), vote.comment
        elif approvals >= p.required_approvals:
            p.status, p.decided_at, p.decision_comment = Status.APPROVED, timezone.now(), vote.comment
        p.save(update_fields=["status", "decided_at", "decision_comment", "updated_at"])
        audit_record(
            action=f"promotion.{decision}",
            obj=p,
            before=before,
            after=_state(p) | {"approvals": approvals, "required": p.required_approvals, "comment": vote.comment},
        )
        if p.status == Status.APPROVED:
            _start_apply(p, actor=actor)
    notify("decision", p, actor=actor)
    return p


def promotion_override(*, actor, promotion: Promotion, reason: str) -> Promotion:
    """Break glass: a platform admin lets a blocked request past its failing gates, with a reason, never silently."""
    require(is_platform_admin(actor), "Only platform admins can override a failing gate.")
    require(actor.pk != promotion.requested_by_id, "You cannot override a gate on your own request.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "An override needs a reason; it is recorded and the risk team is told."})
    with transaction.atomic():
        p = Promotion.objects.select_for_update().get(pk=promotion.pk)
        if p.status != Status.BLOCKED:
            raise Conflict(f"Only a blocked request can be overridden; #{p.pk} is {p.get_status_display()}.")
        before = _state(p)
        p.override_reason, p.overridden_by = reason.strip(), actor
        # The approvals are never skipped: the request goes on to the approvers (or straight on if none needed).
        p.status = Status.AWAITING_APPROVAL if p.required_approvals else Status.APPROVED
        if p.status == Status.APPROVED:
            p.decided_at = timezone.now()
        p.save(update_fields=["override_reason", "overridden_by", "status", "decided_at", "updated_at"])
        audit_record(action="promotion.override", obj=p, before=before, after=_state(p) | {"reason": p.override_reason})
        if p.status == Status.APPROVED:
            _start_apply(p, actor=actor)
    notify("override", p, actor=actor)
    return p


# --- Apply and rollback ----------------------------------------------------------------------------------------


def _start_apply(promotion: Promotion, actor) -> None:
    promotion.apply_job = job_enqueue(
        kind=APPLY_JOB,
        title=f"Apply promotion #{promotion.pk}: {promotion.model.name} v{promotion.model_version.version} "
        f"→ {promotion.environment}",
        user=actor,
        team=promotion.model.team,
        target=promotion,
        params={"promotion_id": promotion.pk},
        max_attempts=settings.GOVERNANCE_APPLY_ATTEMPTS,
    )
    promotion.save(update_fields=["apply_job", "updated_at"])


def promotion_retry_apply(*, actor, promotion: Promotion) -> Promotion:
    require(
        is_platform_admin(actor) or actor.pk == promotion.requested_by_id,
        "Only the requester or a platform admin can retry an apply.",
    )
    if promotion.status != Status.APPROVED:
        raise Conflict(f"Only an approved request waiting to be applied can be retried; #{promotion.pk} is "
                       f"{promotion.get_status_display()}.")  # fmt: skip
    with transaction.atomic():
        audit_record(action="promotion.retry_apply", obj=promotion, after=_state(promotion))
        _start_apply(promotion, actor)
    return promotion


class TransientError(Exception):
    """MLflow or git did not answer: worth another attempt."""


@job_handler(APPLY_JOB)
def apply_promotion(ctx: JobContext, *, promotion_id: int) -> dict:
    from catalog.services.entities import deployment_record

    if not Promotion.objects.filter(pk=promotion_id, status__in=[Status.APPROVED, Status.APPLYING]).update(
        status=Status.APPLYING, updated_at=timezone.now()
    ):
        status = Promotion.objects.get(pk=promotion_id).get_status_display()
        ctx.log(f"Nothing to apply: the request is {status}.")
        return {"status": status}
    p = Promotion.objects.select_related("model", "model_version", "requested_by").get(pk=promotion_id)
    mv = p.model_version
    try:
        with ctx.step(f"Set the MLflow alias '{p.environment}' to version {mv.version}"):
            _set_alias(p.model.name, p.environment, mv.version)
            ctx.log(f"MLflow: {p.model.name}@{p.environment} → v{mv.version}")
        with ctx.step("Commit the environment manifest"):
            sha = _commit_manifest(p)
            ctx.log(f"environments/{p.environment}.yaml at {sha[:12]}")
        with ctx.step("Record the deployment in the catalog"):
            deployment_record(actor=None, model_version=mv, environment=p.environment)
    except TransientError as exc:
        if ctx.job.attempts < ctx.job.max_attempts:
            Promotion.objects.filter(pk=p.pk).update(apply_error=str(exc))
            raise JobRetry(str(exc)) from exc
        _apply_failed(p, str(exc))
        raise
    except Exception as exc:
        _apply_failed(p, f"{type(exc).__name__}: {exc}")
        raise
    with transaction.atomic():
        Promotion.objects.filter(pk=p.pk).update(
            status=Status.APPLIED, applied_at=timezone.now(), manifest_commit=sha, apply_error=""
        )
        p.refresh_from_db()
        if p.rollback_of_id:
            rolled = Promotion.objects.filter(
                model=p.model,
                environment=p.environment,
                status=Status.APPLIED,
                applied_at__gt=_applied_at(p.rollback_of_id),
            ).exclude(pk=p.pk)
            Promotion.objects.filter(pk=p.rollback_of_id).update(status=Status.ROLLED_BACK)
            rolled.update(status=Status.ROLLED_BACK)
        Drift.objects.filter(model=p.model, environment=p.environment, resolved_at__isnull=True).update(
            resolved_at=timezone.now()
        )
        audit_record(action="promotion.applied", obj=p, after=_state(p) | {"manifest_commit": sha})
    notify("rollback" if p.rollback_of_id else "apply", p)
    return {"status": p.status, "manifest_commit": sha}


def _applied_at(pk: int):
    return Promotion.objects.filter(pk=pk).values_list("applied_at", flat=True).first() or timezone.now()


def _apply_failed(p: Promotion, error: str) -> None:
    with transaction.atomic():
        Promotion.objects.filter(pk=p.pk, status=Status.APPLYING).update(status=Status.APPROVED, apply_error=error)
        audit_record(action="promotion.apply_failed", obj=p, after={"error": error})
    notify("apply_failed", p)


def _set_alias(name: str, alias: str, version: int) -> None:
    import requests
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from catalog.services.mlflow_reads import MlflowUnavailable, mlflow_probe

    uri = settings.MLFLOW_TRACKING_URI
    try:
        mlflow_probe(uri)
        MlflowClient(tracking_uri=uri).set_registered_model_alias(name, alias, str(version))
    except (MlflowUnavailable, requests.RequestException) as exc:
        raise TransientError(f"MLflow is not answering: {exc}") from exc
    except MlflowException as exc:
        if exc.get_http_status_code() >= 500:
            raise TransientError(f"MLflow failed: {exc.message}") from exc
        raise


def _commit_manifest(p: Promotion) -> str:
    from governance.manifest import ManifestUnavailable, manifest_write

    approvers = list(p.votes.filter(decision=Vote.APPROVE).values_list("approver__username", flat=True))
    entry = {
        "version": p.model_version.version,
        "run_id": p.model_version.run_id,
        "promotion_id": p.pk,
        "approved_by": approvers,
        "approved_at": (p.decided_at or timezone.now()).isoformat(),
    }
    kind = f"Roll back {p.model.name} to" if p.rollback_of_id else f"Promote {p.model.name}"
    message = (
        f"{kind} v{p.model_version.version} in {p.environment} (promotion #{p.pk})\n\n"
        f"Requested by: {p.requested_by.username if p.requested_by else 'system'}\n"
        f"Approved by: {', '.join(approvers) or 'no approval required by policy'}\n"
        f"Justification: {p.justification}\n"
    )
    try:
        return manifest_write(environment=p.environment, model=p.model.name, entry=entry, message=message)
    except ManifestUnavailable as exc:
        raise TransientError(f"The manifest repository is not available: {exc}") from exc


def rollback_request(*, actor, model: Model, environment: str, reason: str) -> Promotion:
    """Return a model in an environment to the version applied before the current one."""
    require_write(actor, model.team)
    if not (reason or "").strip():
        raise ValidationError({"reason": "A rollback needs a reason; it goes into the audit trail."})
    if environment not in Environment.values:
        raise ValidationError({"environment": f"Use one of: {', '.join(Environment.values)}."})
    with transaction.atomic():
        Model.objects.select_for_update().filter(pk=model.pk).first()
        in_flight = Promotion.objects.filter(
            model=model,
            environment=environment,
            status__in=[Status.APPROVED, Status.APPLYING],
            rollback_of__isnull=False,
        ).first()
        if in_flight:
            return in_flight
        history = list(
            Promotion.objects.filter(model=model, environment=environment, status=Status.APPLIED)
            .select_related("model_version")
            .order_by("-applied_at", "-id")
        )
        if not history:
            raise Conflict(
                f"Nothing has been applied to {environment} for {model.name}, so there is nothing to roll back."
            )
        current = history[0]
        previous = next((h for h in history[1:] if h.model_version_id != current.model_version_id), None)
        if previous is None:
            raise Conflict(f"{model.name} has no earlier version applied in {environment} to return to.")
        p = Promotion.objects.create(
            model=model,
            model_version=previous.model_version,
            environment=environment,
            justification=f"Rollback from v{current.model_version.version}: {reason.strip()}",
            status=Status.APPROVED,
            requested_by=actor,
            rollback_of=current,
            decided_at=timezone.now(),
        )
        audit_record(
            action="promotion.rollback",
            obj=p,
            after=_state(p) | {"from_version": current.model_version.version, "reason": reason.strip()},
        )
        _start_apply(p, actor)
    return p
