"""`make demo`'s promotion requests: every state, through the real workflow and a real MLflow server."""

import pytest
from django.core.management import call_command

from governance.models import Drift, Promotion, Status

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_the_demo_has_a_request_in_every_state_and_rita_has_an_inbox(demo_users, mlflow_server, settings, capsys):
    from catalog.demo_mlflow import seed_mlflow_demo

    settings.MLFLOW_TRACKING_URI = mlflow_server
    seed_mlflow_demo(mlflow_server)
    call_command("sync_mlflow", "--full")
    call_command("seed_governance_demo")
    states = {(p.model.name, p.model_version.version, p.environment): p.status for p in Promotion.objects.all()}
    assert states[("fraud-detection", 3, "production")] == Status.AWAITING_APPROVAL
    assert states[("fraud-detection", 2, "production")] == Status.APPLIED
    assert states[("fraud-detection", 3, "staging")] == Status.ROLLED_BACK
    assert states[("demand_forecast_model", 1, "production")] == Status.BLOCKED
    credit = Promotion.objects.get(model__name="credit-scoring")
    assert credit.status == Status.AWAITING_APPROVAL and credit.required_approvals == 2
    blocked = Promotion.objects.get(model__name="demand_forecast_model")
    assert "null handling changed: forward_fill → zero_fill" in blocked.gate_results.get(gate="feature_parity").summary
    assert Promotion.objects.get(model__name="churn-propensity").override_reason
    assert Drift.objects.filter(model__name="churn-propensity", resolved_at__isnull=True).exists()
    inbox = {p.model.name for p in Promotion.objects.awaiting(demo_users["rita"])}
    assert inbox == {"fraud-detection", "credit-scoring"}
    capsys.readouterr()
    call_command("seed_governance_demo")  # idempotent
    assert "nothing to do" in capsys.readouterr().out
