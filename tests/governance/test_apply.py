"""Apply, rollback and drift against a real MLflow server and a real git manifest repository."""

import json
import subprocess
import uuid

import pytest
import yaml
from mlflow import MlflowClient

from catalog.models import Deployment, ModelVersion
from catalog.services.features import feature_register
from governance.models import Drift, Notification, Promotion, Status
from governance.policy import drift_check
from governance.services import (
    promotion_decide,
    promotion_request,
    promotion_retry_apply,
    rollback_request,
)
from portal.models import Job, Team
from portal.services.jobs import job_enqueue
from tests.catalog.test_mlflow_sync import COMPLETE, register
from tests.conftest import free_port
from tests.governance.conftest import AMOUNT

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def client(settings, mlflow_server) -> MlflowClient:
    settings.MLFLOW_TRACKING_URI = mlflow_server
    return MlflowClient(tracking_uri=mlflow_server)


@pytest.fixture
def synced_model(client, demo_users, django_capture_on_commit_callbacks):
    """A fraud model with two complete versions in MLflow, synced into the catalog."""
    experiment = client.get_experiment_by_name("governance-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("governance-tests")
    name = f"scorer-{uuid.uuid4().hex[:6]}"
    feature = feature_register(actor=None, name="txn_amount_7d", team=Team.objects.get(slug="fraud"), **AMOUNT)
    tags = COMPLETE | {
        "mlplatform.data_snapshot": "s3://lake/txn@2026-11-01",
        "mlplatform.feature_versions": json.dumps({"txn_amount_7d": feature.version.version}),
    }
    for _ in range(2):
        register(
            client,
            experiment_id,
            name,
            tags=tags,
            params={"max_depth": "4"},
            metrics={"accuracy": 0.95, "auc": 0.9},
            model_tags={"mlplatform.team": "fraud", "mlplatform.task": "classification"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        job_enqueue(kind="catalog.sync_mlflow", title="Sync", user=demo_users["admin"], params={"full": True})
    return name


def promote(demo_users, capture, name, version, *, approver="rita"):
    mv = ModelVersion.objects.get(model__name=name, version=version)
    with capture(execute=True):
        p, _ = promotion_request(
            actor=demo_users["dana"], model_version=mv, environment="production", justification="go"
        )
    p.refresh_from_db()
    assert p.status == Status.AWAITING_APPROVAL, [g.summary for g in p.gate_results.all()]
    with capture(execute=True):
        promotion_decide(actor=demo_users[approver], promotion=p, decision="approve", comment="ok")
    p.refresh_from_db()
    return p


def manifest(repo: str, env: str = "production") -> dict:
    text = subprocess.run(["git", "--git-dir", repo, "show", f"main:environments/{env}.yaml"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    return yaml.safe_load(text)


def last_commit_message(repo: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, "log", "-1", "--format=%B", "main"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_an_approved_request_moves_the_alias_records_the_deployment_and_commits_the_manifest(
    client, synced_model, demo_users, django_capture_on_commit_callbacks, manifest_repo
):
    p = promote(demo_users, django_capture_on_commit_callbacks, synced_model, 1)
    assert p.status == Status.APPLIED, p.apply_error
    assert client.get_model_version_by_alias(synced_model, "production").version == "1"
    assert Deployment.objects.get(model_version__model__name=synced_model, environment="production").model_version_id
    entry = manifest(manifest_repo)["models"][synced_model]
    assert entry["version"] == 1 and entry["promotion_id"] == p.pk and entry["approved_by"] == ["rita"]
    assert f"(promotion #{p.pk})" in last_commit_message(manifest_repo) and p.manifest_commit
    assert [s["status"] for s in Job.objects.get(pk=p.apply_job_id).steps] == ["succeeded"] * 3


def test_rollback_returns_to_the_previous_version_everywhere(
    client, synced_model, demo_users, django_capture_on_commit_callbacks, manifest_repo
):
    first = promote(demo_users, django_capture_on_commit_callbacks, synced_model, 1)
    second = promote(demo_users, django_capture_on_commit_callbacks, synced_model, 2, approver="raj")
    assert client.get_model_version_by_alias(synced_model, "production").version == "2"
    model = first.model
    with django_capture_on_commit_callbacks(execute=True):
        back = rollback_request(actor=demo_users["dana"], model=model, environment="production", reason="p99 latency")
    back.refresh_from_db()
    second.refresh_from_db()
    assert back.status == Status.APPLIED and back.model_version.version == 1 and back.rollback_of_id == second.pk
    assert second.status == Status.ROLLED_BACK
    assert client.get_model_version_by_alias(synced_model, "production").version == "1"
    assert manifest(manifest_repo)["models"][synced_model]["version"] == 1
    assert "Roll back" in last_commit_message(manifest_repo)
    assert Deployment.objects.get(model_version__model=model, environment="production").model_version.version == 1


def test_mlflow_down_during_apply_keeps_the_request_approved_and_nothing_claims_deployment(
    client, synced_model, demo_users, django_capture_on_commit_callbacks, manifest_repo, settings, mlflow_server
):
    settings.GOVERNANCE_APPLY_ATTEMPTS = 2
    mv = ModelVersion.objects.get(model__name=synced_model, version=1)
    with django_capture_on_commit_callbacks(execute=True):
        p, _ = promotion_request(
            actor=demo_users["dana"], model_version=mv, environment="production", justification="go"
        )
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    with django_capture_on_commit_callbacks(execute=True):
        promotion_decide(actor=demo_users["rita"], promotion=p, decision="approve")
    p.refresh_from_db()
    job = Job.objects.get(pk=p.apply_job_id)
    assert p.status == Status.APPROVED and "MLflow is not answering" in p.apply_error
    assert job.status == "failed" and job.attempts == 2
    assert not Deployment.objects.filter(model_version=mv).exists()
    assert Notification.objects.filter(user__username="dana", event="apply_failed").exists()
    settings.MLFLOW_TRACKING_URI = mlflow_server
    with django_capture_on_commit_callbacks(execute=True):
        promotion_retry_apply(actor=demo_users["dana"], promotion=p)
    p.refresh_from_db()
    assert p.status == Status.APPLIED and p.apply_error == ""


def test_an_alias_moved_outside_the_portal_is_flagged_as_drift_after_sync(
    client, synced_model, demo_users, django_capture_on_commit_callbacks
):
    promote(demo_users, django_capture_on_commit_callbacks, synced_model, 1)
    client.set_registered_model_alias(synced_model, "production", "2")
    with django_capture_on_commit_callbacks(execute=True):
        job_enqueue(kind="catalog.sync_mlflow", title="Sync", user=demo_users["admin"], params={"full": True})
    drift = Drift.objects.get(model__name=synced_model, resolved_at__isnull=True)
    assert (drift.expected_version, drift.observed_version) == (1, 2)
    assert Notification.objects.filter(user__username="rita", event="drift").exists()
    assert drift_check() == []  # the same drift is not reported twice
    assert Promotion.objects.filter(model__name=synced_model, status=Status.APPLIED).count() == 1


def test_git_down_during_apply_is_retried_and_reported_without_a_deployment(
    client, synced_model, demo_users, django_capture_on_commit_callbacks, settings
):
    settings.GOVERNANCE_APPLY_ATTEMPTS = 2
    settings.GOVERNANCE_MANIFEST_REPO = f"http://127.0.0.1:{free_port()}/environments.git"
    p = promote(demo_users, django_capture_on_commit_callbacks, synced_model, 1)
    assert p.status == Status.APPROVED and "manifest repository is not available" in p.apply_error
    assert Job.objects.get(pk=p.apply_job_id).attempts == 2
    assert not Deployment.objects.filter(model_version__model__name=synced_model).exists()


def test_the_requester_withdraws_an_open_request_and_cannot_withdraw_it_twice(
    synced_model, demo_users, django_capture_on_commit_callbacks
):
    from governance.services import promotion_withdraw
    from portal.services.teams import Conflict

    mv = ModelVersion.objects.get(model__name=synced_model, version=1)
    with django_capture_on_commit_callbacks(execute=True):
        p, _ = promotion_request(
            actor=demo_users["dana"], model_version=mv, environment="production", justification="x"
        )
    with pytest.raises(Exception, match="Only the requester"):
        promotion_withdraw(actor=demo_users["eli"], promotion=p)
    assert promotion_withdraw(actor=demo_users["dana"], promotion=p).status == Status.WITHDRAWN
    with pytest.raises(Conflict, match="only open requests"):
        promotion_withdraw(actor=demo_users["dana"], promotion=p)


def test_ci_rolls_back_through_the_api(
    client, synced_model, demo_users, django_capture_on_commit_callbacks, api_client, make_token
):
    promote(demo_users, django_capture_on_commit_callbacks, synced_model, 1)
    promote(demo_users, django_capture_on_commit_callbacks, synced_model, 2)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'promote')}")
    body = {"model": synced_model, "environment": "production", "reason": "error rate up"}
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_client.post("/api/v1/governance/rollbacks/", body, format="json")
    assert answer.status_code == 202 and answer.json()["version"] == 1 and answer.json()["gates_job_url"] is None
    assert answer.json()["job_url"].endswith(
        f"/api/v1/jobs/{Promotion.objects.get(pk=answer.json()['id']).apply_job_id}/"
    )
    assert client.get_model_version_by_alias(synced_model, "production").version == "1"
    nothing = api_client.post("/api/v1/governance/rollbacks/", body | {"model": "no-such-model"}, format="json")
    assert nothing.status_code == 404
