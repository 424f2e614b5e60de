"""Demo promotion requests in every state, built through the real workflow (services, gates, apply jobs, MLflow).

Run after the MLflow demo models are synced (``manage.py seed_governance_demo``, which ``make demo`` calls).
Idempotent: it does nothing once any promotion exists. Jobs run inline here; if a worker claims one
first, this waits for it.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model

from catalog.models import Model, ModelVersion
from governance.models import Drift, Promotion, Status
from governance.policy import threshold_set
from governance.services import (
    promotion_decide,
    promotion_override,
    promotion_request,
    rollback_request,
)
from portal.models import Job, JobStatus, Team
from portal.services.jobs import job_run


class DemoNotReady(RuntimeError):
    pass


def _settle(timeout: float = 120) -> None:
    """Run every queued governance job inline (or wait for the worker that took it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = list(
            Job.objects.filter(kind__startswith="governance.", status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            .order_by("id")
            .values_list("pk", "status")
        )
        if not pending:
            return
        for pk, status in pending:
            if status == JobStatus.QUEUED:
                job_run(job_id=pk)
        time.sleep(0.2)
    raise DemoNotReady("governance demo jobs did not finish in time")


def _version(name: str, number: int) -> ModelVersion:
    mv = ModelVersion.objects.select_related("model__team").filter(model__name=name, version=number).first()
    if mv is None:
        raise DemoNotReady(f"{name} v{number} is not in the catalog yet: run the MLflow demo seed and a sync first")
    return mv


def _ask(user, name: str, number: int, environment: str, why: str) -> Promotion:
    p, _ = promotion_request(
        actor=user, model_version=_version(name, number), environment=environment, justification=why
    )
    _settle()
    p.refresh_from_db()
    return p


def seed_governance_demo() -> list[str]:
    if Promotion.objects.exists():
        return []
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["admin", "dana", "eli", "raj"])}
    dana, eli, raj, admin = users["dana"], users["eli"], users["raj"], users["admin"]
    done = []

    # Staging history with a rollback: v2 then v3 applied to staging (no approval needed there), then back to v2.
    _ask(dana, "fraud-detection", 2, "staging", "Hourly transaction count; ready for shadow traffic.")
    _ask(dana, "fraud-detection", 3, "staging", "Less regularisation: better AUC offline.")
    rollback_request(
        actor=dana, model=Model.objects.get(name="fraud-detection"), environment="staging", reason="v3 raised false "
        "positives on the staging replay; back to v2 while we look."
    )  # fmt: skip
    _settle()
    done.append("fraud-detection: v2 → staging applied, v3 applied then rolled back")

    # Applied to production, approved by raj.
    p = _ask(dana, "fraud-detection", 2, "production", "Same version as staging for two weeks, no incidents.")
    promotion_decide(actor=raj, promotion=p, decision="approve", comment="Gates green, staging clean.")
    _settle()
    done.append("fraud-detection: v2 → production applied (approved by raj)")

    # Since then the fraud team holds itself to a stricter accuracy than the platform's default (0.85).
    threshold_set(
        actor=dana,
        team=Team.objects.get(slug="fraud"),
        task="classification",
        metric="accuracy",
        direction=">=",
        value=0.9,
    )
    done.append("fraud team threshold: accuracy >= 0.9 (the platform default is 0.85)")

    # Awaiting approval, all gates green: rita's inbox.
    _ask(dana, "fraud-detection", 3, "production", "AUC 0.987 vs 0.970 in production; staging replay re-run clean.")
    done.append("fraud-detection: v3 → production awaiting approval")

    # Blocked by feature-version parity: the seed's forward-fill → zero-fill story.
    _ask(eli, "demand_forecast_model", 1, "production", "Weekly retrain; ready for the planning batch job.")
    done.append("demand_forecast_model: v1 → production blocked by feature-version parity")

    # High risk: needs two approvals.
    _ask(admin, "credit-scoring", 1, "production", "Quarterly scorecard refresh requested by credit risk.")
    done.append("credit-scoring: v1 → production awaiting two approvals (rita and raj)")

    # Break-glass: churn-propensity lacks lineage; an admin lets it into staging, then its alias drifts.
    blocked = _ask(dana, "churn-propensity", 1, "staging", "Needed in staging for the retention A/B test.")
    promotion_override(
        actor=admin, promotion=blocked, reason="Retention experiment deadline; lineage backfill tracked in ML-1234."
    )
    _settle()
    done.append("churn-propensity: v1 → staging by break-glass override")
    _drift("churn-propensity", "staging")
    if Drift.objects.filter(resolved_at__isnull=True).exists():
        done.append("churn-propensity: staging alias removed in MLflow by hand → drift flagged")
    return done


def _drift(name: str, alias: str) -> None:
    """Move an alias outside the portal (as someone with MLflow access might), then sync so the drift is seen."""
    from django.core.management import call_command
    from mlflow import MlflowClient

    if Promotion.objects.filter(model__name=name, environment=alias, status=Status.APPLIED).exists():
        MlflowClient(tracking_uri=settings.MLFLOW_TRACKING_URI).delete_registered_model_alias(name, alias)
        call_command("sync_mlflow", "--full")
