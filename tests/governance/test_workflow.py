"""Request → gates → votes, the way the risk team and CI pipelines use them (MLflow-free parts)."""

import pytest

from governance.models import EvaluationThreshold, GateResult, Notification, Promotion, Status, Vote
from governance.policy import threshold_set
from governance.services import promotion_decide, promotion_override, promotion_request
from portal.models import AuditEvent, RiskTier, RoleGrant, Team
from portal.services.teams import Conflict
from tests.catalog.factories import complete_version, make_model, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def ask(demo_users, django_capture_on_commit_callbacks):
    """Request a promotion as dana and run its gates (eager Celery)."""

    def ask(mv, environment="production", user="dana", why="Better recall on last month's fraud."):
        with django_capture_on_commit_callbacks(execute=True):
            promotion, created = promotion_request(
                actor=demo_users[user], model_version=mv, environment=environment, justification=why
            )
        promotion.refresh_from_db()
        return promotion

    return ask


@pytest.fixture
def api(api_client, make_token, demo_users):
    def login(user, *scopes):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users[user], *(scopes or ('promote',)))}")
        return api_client

    return login


def gates(promotion) -> dict[str, GateResult]:
    return {g.gate: g for g in promotion.gate_results.all()}


def test_a_complete_version_passes_every_gate_and_waits_for_one_approval(scorer, ask):
    p = ask(scorer.versions.get(version=1))
    assert p.status == Status.AWAITING_APPROVAL and p.required_approvals == 1
    results = gates(p)
    assert set(results) == {"lineage", "evaluation", "feature_parity", "risk_policy"}
    assert all(g.passed for g in results.values()), [g.summary for g in results.values()]
    checks = {c["metric"]: c for c in results["evaluation"].details["checks"]}
    assert checks["accuracy"]["observed"] == 0.95 and checks["accuracy"]["rule"] == ">= 0.85"
    assert "rita" in results["risk_policy"].details["eligible_approvers"]
    assert Notification.objects.filter(user__username="rita", url=p.get_absolute_url()).exists()


def test_missing_lineage_and_weak_metrics_block_with_what_was_missing(scorer, ask):
    bare, _ = make_version(scorer, 2, bare=True, metrics={"accuracy": 0.7})
    p = ask(bare)
    assert p.status == Status.BLOCKED
    results = gates(p)
    assert not results["lineage"].passed and "Training code commit" in results["lineage"].summary
    assert results["evaluation"].summary.startswith("accuracy = 0.7, needs >= 0.85")
    assert "auc was not logged" in results["evaluation"].summary


def test_feature_parity_blocks_a_model_trained_on_the_old_definition_and_says_why(demo_users, features, ask):
    v1, v2 = features
    model = make_model("demand_forecast_model", team="forecasting", task="forecasting")
    mv = complete_version(model, 1, {"rolling_7d_avg_orders": v1}, metrics={"rmse": 4.5, "mae": 3.6})
    p = ask(mv, user="eli")
    parity = gates(p)["feature_parity"]
    assert p.status == Status.BLOCKED and not parity.passed
    assert f"rolling_7d_avg_orders: trained on {v1}, serving {v2} in production" in parity.summary
    assert "null handling changed: forward_fill → zero_fill" in parity.summary


def test_pinned_features_pass_parity_with_the_difference_noted(demo_users, features, ask):
    v1, _ = features
    model = make_model("demand_forecast_model", team="forecasting", task="forecasting")
    mv = complete_version(model, 1, {"rolling_7d_avg_orders": v1}, metrics={"rmse": 4.5, "mae": 3.6})
    mv.features_pinned = True
    mv.save()
    parity = gates(ask(mv, user="eli"))["feature_parity"]
    assert parity.passed and "pins its feature versions" in parity.summary


def test_identical_requests_return_the_open_one_and_a_newer_version_supersedes_it(scorer, ask):
    first = ask(scorer.versions.get(version=1))
    assert ask(scorer.versions.get(version=1)).pk == first.pk
    trained_on = scorer.versions.get(version=1).feature_versions
    v2 = complete_version(scorer, 2, trained_on, metrics={"accuracy": 0.96, "auc": 0.92})
    second = ask(v2)
    first.refresh_from_db()
    assert first.status == Status.SUPERSEDED and first.superseded_by_id == second.pk
    assert Promotion.objects.filter(status__in=["checking", "blocked", "awaiting_approval"]).count() == 1


def test_separation_of_duties_grants_and_single_votes(scorer, ask, demo_users):
    from django.core.exceptions import PermissionDenied

    p = ask(scorer.versions.get(version=1))
    admin = demo_users["admin"]
    RoleGrant.objects.create(user=admin, role="risk_approver").teams.add(Team.objects.get(slug="forecasting"))
    with pytest.raises(PermissionDenied, match="does not cover team fraud"):
        promotion_decide(actor=admin, promotion=p, decision="approve")
    with pytest.raises(PermissionDenied, match="own request"):
        p.requested_by = demo_users["rita"]
        p.save()
        promotion_decide(actor=demo_users["rita"], promotion=p, decision="approve")
    p.requested_by = demo_users["dana"]
    p.save()
    with pytest.raises(Exception, match="Say why"):
        promotion_decide(actor=demo_users["raj"], promotion=p, decision="reject", comment=" ")
    assert not Vote.objects.exists()


def test_high_risk_needs_two_distinct_approvals_and_a_decided_request_stays_decided(
    demo_users, ask, scorer, django_capture_on_commit_callbacks
):
    scorer.risk_tier = RiskTier.HIGH
    scorer.save()
    p = ask(scorer.versions.get(version=1))
    assert p.required_approvals == 2
    p = promotion_decide(actor=demo_users["rita"], promotion=p, decision="approve", comment="ok")
    assert p.status == Status.AWAITING_APPROVAL
    with pytest.raises(Conflict, match="already voted"):
        promotion_decide(actor=demo_users["rita"], promotion=p, decision="approve")
    p = promotion_decide(actor=demo_users["raj"], promotion=p, decision="reject", comment="Fairness review missing.")
    assert p.status == Status.REJECTED and p.decision_comment == "Fairness review missing."
    with pytest.raises(Conflict, match="already rejected"):
        promotion_decide(actor=demo_users["admin"], promotion=p, decision="approve")
    actions = list(AuditEvent.objects.filter(object_type="governance.promotion").values_list("action", flat=True))
    assert actions[:2] == ["promotion.request", "promotion.gates"] and "promotion.reject" in actions


def test_break_glass_needs_a_reason_keeps_the_approvals_and_tells_the_risk_team(scorer, ask, demo_users):
    from django.core.exceptions import PermissionDenied, ValidationError

    p = ask(make_version(scorer, 2, bare=True)[0])
    assert p.status == Status.BLOCKED
    with pytest.raises(PermissionDenied):
        promotion_override(actor=demo_users["rita"], promotion=p, reason="x")
    with pytest.raises(ValidationError):
        promotion_override(actor=demo_users["admin"], promotion=p, reason="")
    p = promotion_override(
        actor=demo_users["admin"], promotion=p, reason="Incident 42: hotfix, lineage backfilled later"
    )
    assert p.status == Status.AWAITING_APPROVAL and p.overridden_by == demo_users["admin"]
    told = set(Notification.objects.filter(event="override").values_list("user__username", flat=True))
    assert {"rita", "raj"} <= told
    assert AuditEvent.objects.filter(action="promotion.override").exists()


def test_a_team_may_tighten_a_threshold_but_never_loosen_it(demo_users):
    fraud = Team.objects.get(slug="fraud")
    row = threshold_set(
        actor=demo_users["dana"], team=fraud, task="classification", metric="auc", direction=">=", value=0.85
    )
    assert row.value == 0.85
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="never loosen"):
        threshold_set(
            actor=demo_users["dana"], team=fraud, task="classification", metric="auc", direction=">=", value=0.7
        )
    assert EvaluationThreshold.objects.get(team=fraud, metric="auc").value == 0.85


# --- API -------------------------------------------------------------------------------------------------------


def test_ci_requests_through_the_api_and_a_retry_returns_the_same_request(
    api, scorer, django_capture_on_commit_callbacks
):
    client = api("dana")
    body = {"model_version": "card-scorer/1", "environment": "production", "justification": "CI: nightly retrain"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/governance/promotions/", body, format="json")
    assert first.status_code == 201, first.json()
    data = first.json()
    assert data["status"] == "checking" and data["job_url"].endswith(
        f"/api/v1/jobs/{Promotion.objects.get().gates_job_id}/"
    )
    again = client.post("/api/v1/governance/promotions/", body, format="json")
    assert again.status_code == 200 and again.json()["id"] == data["id"]
    shown = client.get(f"/api/v1/governance/promotions/{data['id']}/").json()
    assert shown["status"] == "awaiting_approval" and {g["gate"] for g in shown["gates"]} >= {"lineage", "evaluation"}


def test_api_refuses_bad_requests_clearly(api, scorer, demo_users):
    body = {"model_version": "card-scorer/1", "environment": "production", "justification": "x"}
    read_only = api("dana", "read")
    answer = read_only.post("/api/v1/governance/promotions/", body, format="json")
    assert answer.status_code == 403 and "promote" in answer.json()["message"]
    client = api("dana")
    missing = client.post("/api/v1/governance/promotions/", body | {"model_version": "card-scorer/99"}, format="json")
    assert missing.status_code == 404
    assert (
        client.post("/api/v1/governance/promotions/", body | {"environment": "moon"}, format="json").status_code == 400
    )
    outsider = api("eli").post("/api/v1/governance/promotions/", body, format="json")
    assert outsider.status_code == 403 and "team fraud" in outsider.json()["message"]
    loosen = api("dana", "write", "promote").post(
        "/api/v1/governance/thresholds/",
        {"task": "classification", "metric": "accuracy", "direction": ">=", "value": 0.5, "team": "fraud"},
        format="json",
    )
    assert loosen.status_code == 400 and "never loosen" in str(loosen.json())
    assert not Promotion.objects.exists()


def test_approvers_vote_through_the_api_with_the_right_status_codes(api, scorer, ask):
    p = ask(scorer.versions.get(version=1))
    assert api("dana").post(f"/api/v1/governance/promotions/{p.pk}/approve/", {}, format="json").status_code == 403
    rita = api("rita")
    assert rita.post(f"/api/v1/governance/promotions/{p.pk}/reject/", {}, format="json").status_code == 400
    answer = rita.post(f"/api/v1/governance/promotions/{p.pk}/approve/", {"comment": "fine"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] in ("approved", "applying", "applied")
    again = api("raj").post(f"/api/v1/governance/promotions/{p.pk}/approve/", {}, format="json")
    assert again.status_code == 409 and "cannot be decided again" in again.json()["message"]
