"""The MLflow sync against a real MLflow server.

The server is shared by the test session, so every test uses its own model names; a sync
also sees other tests' models, so assertions are about this test's names.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

from catalog.models import Feature, Model, ModelVersion, Project
from catalog.services import mlflow_reads as reads_module
from catalog.services.features import feature_register
from portal.models import AuditEvent, Job, JobStatus, RiskTier, Team
from portal.services.jobs import job_enqueue
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

COMPLETE = {
    "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567",
    "mlplatform.image_digest": "sha256:" + "ab" * 32,
}
DEFINITION = {"computation_logic": "SUM(x)", "null_handling": "zero_fill", "data_type": "float32", "source_table": "t"}


@pytest.fixture
def client(settings, mlflow_server) -> MlflowClient:
    settings.MLFLOW_TRACKING_URI = mlflow_server
    return MlflowClient(tracking_uri=mlflow_server)


@pytest.fixture
def experiment_id(client) -> str:
    existing = client.get_experiment_by_name("sync-tests")
    return existing.experiment_id if existing else client.create_experiment("sync-tests")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(client, experiment_id, name, *, tags=None, params=None, metrics=None, datasets=(), model_tags=None) -> int:
    """A run (with the given lineage) and a model version made from it; returns the version number."""
    if name not in {m.name for m in client.search_registered_models(filter_string=reads_module.name_filter(name))}:
        client.create_registered_model(name, tags=model_tags or {}, description=f"{name} for tests")
    run = client.create_run(experiment_id, tags=tags or {})
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, now, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, v) for k, v in (params or {}).items()],
    )
    if datasets:
        inputs = [
            DatasetInput(Dataset(n, d, "s3", json.dumps({"uri": u})), [InputTag("mlflow.data.context", "training")])
            for n, d, u in datasets
        ]
        client.log_inputs(run.info.run_id, datasets=inputs)
    mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return int(mv.version)


def sync(user, capture, *, full: bool = False) -> Job:
    with capture(execute=True):
        job = job_enqueue(kind="catalog.sync_mlflow", title="Sync", user=user, params={"full": full})
    job.refresh_from_db()
    return job


def warnings_of(job: Job) -> list[str]:
    return list(job.log_lines.filter(level="warning").values_list("message", flat=True))


def catalog_state() -> tuple[list, list, int]:
    models = list(Model.objects.order_by("name").values())
    versions = list(ModelVersion.objects.order_by("model__name", "version").values())
    return models, versions, AuditEvent.objects.exclude(action__startswith="job.").count()


@pytest.fixture
def admin(demo_users):
    return demo_users["admin"]


def test_full_sync_creates_models_and_versions_with_lineage(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name, project, feature = uid("fraud-model"), uid("proj"), uid("feat")
    fv = feature_register(actor=None, name=feature, team=Team.objects.get(slug="fraud"), **DEFINITION).version
    model_tags = {
        "mlplatform.team": "fraud",
        "mlplatform.task": "classification",
        "mlplatform.framework": "sklearn",
        "mlplatform.risk_tier": "high",
        "mlplatform.project": project,
        "mlplatform.workload_type": "batch",
    }
    tags = COMPLETE | {
        "mlplatform.feature_versions": json.dumps({feature: fv.version}),
        "mlplatform.features_pinned": "true",
    }
    register(
        client,
        experiment_id,
        name,
        tags=tags,
        params={"C": "1.0"},
        metrics={"auc": 0.91, "accuracy": 0.9},
        datasets=[("card_txns", "d1g35t", "s3://b/card_txns")],
        model_tags=model_tags,
    )
    register(client, experiment_id, name, params={"C": "2.0"}, metrics={"auc": 0.92})

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [s["name"] for s in job.steps] == ["Connect to MLflow", "Registered models", "Versions and runs", "Summary"]
    assert {"models_seen", "models_changed", "versions_written", "problems", "seconds"} <= set(job.result)
    model = Model.objects.select_related("team", "project").get(name=name)
    rm = client.get_registered_model(name)
    assert (model.team.slug, model.task, model.framework, model.workload_type) == (
        "fraud",
        "classification",
        "sklearn",
        "batch",
    )
    assert model.risk_tier == RiskTier.HIGH and model.source == "mlflow" and model.description == f"{name} for tests"
    assert model.project.name == project and Project.objects.get(name=project).source == "mlflow"
    assert (model.version_count, model.latest_version, model.mlflow_updated_ms) == (2, 2, rm.last_updated_timestamp)
    v1, v2 = model.versions.get(version=1), model.versions.get(version=2)
    assert v1.lineage_complete == 6 and v1.completeness == 1.0 and v1.features_pinned
    assert v1.code_commit == COMPLETE["mlflow.source.git.commit"] and v1.image_digest.startswith("sha256:")
    assert v1.data_snapshot == "card_txns@d1g35t" and v1.params == {"C": "1.0"} and v1.metrics["auc"] == 0.91
    assert list(v1.feature_version_links.all()) == [fv]
    assert [(s.dataset.name, s.digest, s.uri) for s in v1.dataset_snapshots.all()] == [
        ("card_txns", "d1g35t", "s3://b/card_txns")
    ]
    assert v2.lineage_complete == 2 and v2.code_commit == "" and v2.status == "READY" and v2.run_id


def test_aliases_are_synced_and_moves_are_seen_without_a_timestamp_bump(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name = uid("aliased")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})
    register(client, experiment_id, name)
    client.set_registered_model_alias(name, "production", "1")
    client.set_registered_model_alias(name, "staging", "2")
    sync(admin, django_capture_on_commit_callbacks)
    assert dict(ModelVersion.objects.filter(model__name=name).values_list("version", "aliases")) == {
        1: ["production"],
        2: ["staging"],
    }
    before = client.get_registered_model(name).last_updated_timestamp
    client.set_registered_model_alias(name, "production", "2")
    assert client.get_registered_model(name).last_updated_timestamp == before  # MLflow does not bump it

    job = sync(admin, django_capture_on_commit_callbacks)

    assert dict(ModelVersion.objects.filter(model__name=name).values_list("version", "aliases")) == {
        1: [],
        2: ["production", "staging"],
    }
    assert job.result["versions_written"] == 2


def test_unchanged_resync_writes_nothing_and_reads_no_versions(
    client, experiment_id, admin, django_capture_on_commit_callbacks, monkeypatch
):
    register(client, experiment_id, uid("steady"), tags=COMPLETE, model_tags={"mlplatform.team": "credit"})
    sync(admin, django_capture_on_commit_callbacks)
    state = catalog_state()
    calls = Counter()
    for method in ("search_model_versions", "search_runs", "get_run"):
        original = getattr(MlflowClient, method)
        monkeypatch.setattr(
            MlflowClient, method, lambda self, *a, _o=original, _m=method, **k: calls.update([_m]) or _o(self, *a, **k)
        )

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED
    assert job.result["versions_written"] == 0 and job.result["models_changed"] == 0 and job.result["runs_read"] == 0
    assert catalog_state() == state  # no row changed, no audit event but the job's own
    assert calls == Counter()


def test_new_version_and_changed_tags_are_picked_up(client, experiment_id, admin, django_capture_on_commit_callbacks):
    name = uid("growing")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud", "mlplatform.risk_tier": "low"})
    sync(admin, django_capture_on_commit_callbacks)
    register(client, experiment_id, name, tags=COMPLETE, metrics={"auc": 0.8})
    client.set_registered_model_tag(name, "mlplatform.risk_tier", "high")

    job = sync(admin, django_capture_on_commit_callbacks)

    model = Model.objects.get(name=name)
    assert job.result["versions_written"] == 1 and job.result["models_changed"] == 1
    assert (model.version_count, model.latest_version, model.risk_tier) == (2, 2, RiskTier.HIGH)
    assert model.versions.get(version=2).code_commit == COMPLETE["mlflow.source.git.commit"]
    # A tag change alone (MLflow keeps the timestamp) is seen too, without re-reading versions.
    client.set_registered_model_tag(name, "mlplatform.task", "ranking")
    job = sync(admin, django_capture_on_commit_callbacks)
    assert Model.objects.get(name=name).task == "ranking" and job.result["versions_written"] == 0


def test_unregistered_feature_version_and_unknown_team_are_reported(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name = uid("ghostly")
    tags = {"mlplatform.feature_versions": json.dumps({"ghost_feature": "deadbeef0000"})}
    register(client, experiment_id, name, tags=tags, model_tags={"mlplatform.team": "no-such-team"})

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED and job.result["problems"] >= 1
    messages = warnings_of(job)
    assert f"{name} v1: claims feature ghost_feature@deadbeef0000, which is not registered" in messages
    assert any(m.startswith(name) and "unknown team 'no-such-team'" in m for m in messages)
    model = Model.objects.select_related("team").get(name=name)
    assert (model.team.slug, model.team.name) == ("unassigned", "Unassigned")
    version = model.versions.get()
    assert version.feature_versions == {"ghost_feature": "deadbeef0000"} and not version.feature_version_links.exists()


def test_mlflow_down_fails_the_job_clearly_and_leaves_the_catalog_alone(
    client, experiment_id, admin, django_capture_on_commit_callbacks, settings
):
    register(client, experiment_id, uid("kept"), tags=COMPLETE, model_tags={"mlplatform.team": "fraud"})
    sync(admin, django_capture_on_commit_callbacks)
    state = catalog_state()
    down = f"http://127.0.0.1:{free_port()}"
    settings.MLFLOW_TRACKING_URI = down

    started = time.monotonic()
    job = sync(admin, django_capture_on_commit_callbacks)

    assert time.monotonic() - started < 15  # no minutes of client retries
    assert job.status == JobStatus.FAILED
    assert f"MLflow at {down} is not answering" in job.error
    assert job.steps[0]["name"] == "Connect to MLflow" and job.steps[0]["status"] == "failed"
    assert catalog_state() == state
    with pytest.raises(CommandError, match="is not answering"):
        call_command("sync_mlflow")


def test_models_gone_from_mlflow_are_orphaned_not_deleted(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name = uid("leaving")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})
    sync(admin, django_capture_on_commit_callbacks)
    client.delete_registered_model(name)

    job = sync(admin, django_capture_on_commit_callbacks)

    model = Model.objects.get(name=name)
    assert model.orphaned and model.versions.count() == 1 and job.result["models_orphaned"] >= 1
    assert f"{name} is no longer in MLflow: marked orphaned." in warnings_of(job)
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})  # it comes back
    sync(admin, django_capture_on_commit_callbacks)
    assert not Model.objects.get(name=name).orphaned


def test_names_with_quotes_get_their_own_versions(client, experiment_id, admin, django_capture_on_commit_callbacks):
    base = uid("q")
    names = [f"{base} o'neil", f"{base}'a\"x", f"{base}'b\"y"]  # the last two share the LIKE prefix
    for count, name in enumerate(names, start=1):
        for _ in range(count):
            register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})

    sync(admin, django_capture_on_commit_callbacks)

    assert [Model.objects.get(name=n).versions.count() for n in names] == [1, 2, 3]


def test_runs_are_fetched_in_batches_not_per_version(
    client, experiment_id, admin, django_capture_on_commit_callbacks, monkeypatch
):
    sync(admin, django_capture_on_commit_callbacks)  # everything else in the shared server is now synced
    name, n = uid("many"), 25
    for _ in range(n):
        register(client, experiment_id, name, tags=COMPLETE, model_tags={"mlplatform.team": "fraud"})
    monkeypatch.setattr(reads_module, "RUN_CHUNK", 10)
    calls: dict[str, list] = {"search_runs": [], "get_run": [], "search_model_versions": []}
    for method in calls:
        original = getattr(MlflowClient, method)
        monkeypatch.setattr(
            MlflowClient, method, lambda self, *a, _o=original, _m=method, **k: calls[_m].append(k) or _o(self, *a, **k)
        )

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.result["versions_written"] == n and job.result["runs_read"] == n
    assert len(calls["search_runs"]) == math.ceil(n / 10) and calls["get_run"] == []
    assert all(k["filter_string"].count("'") // 2 <= 10 for k in calls["search_runs"])
    assert len(calls["search_model_versions"]) == 1
    assert Model.objects.get(name=name).version_count == n


def test_demo_seeder_registers_the_demo_models_and_is_idempotent(
    client, mlflow_server, admin, django_capture_on_commit_callbacks
):
    from catalog.demo_mlflow import DEMO_MODELS, ROLLING_V1, seed_mlflow_demo
    from catalog.services.features import feature_version_hash

    first = seed_mlflow_demo(mlflow_server)
    assert seed_mlflow_demo(mlflow_server) == []  # second run: nothing to do
    counts = {m.name: len(client.search_model_versions(filter_string=f"name='{m.name}'")) for m in DEMO_MODELS}
    assert counts == {"fraud-detection": 3, "credit-scoring": 1, "demand_forecast_model": 1, "churn-propensity": 1}
    claimed = feature_version_hash(ROLLING_V1)
    assert f"feature rolling_7d_avg_orders@{claimed} registered" in first  # the catalog is fresh per test

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED
    assert [m for m in warnings_of(job) if m.startswith(tuple(counts))] == []  # demo claims only registered features
    fraud = Model.objects.select_related("team").get(name="fraud-detection")
    assert (fraud.team.slug, fraud.task, fraud.risk_tier, fraud.version_count) == (
        "fraud",
        "classification",
        RiskTier.MEDIUM,
        3,
    )
    assert dict(fraud.versions.values_list("version", "aliases")) == {1: [], 2: ["production"], 3: ["staging"]}
    assert set(fraud.versions.get(version=3).metrics) == {"accuracy", "auc"}
    assert Model.objects.get(name="credit-scoring").risk_tier == RiskTier.HIGH
    forecast = Model.objects.get(name="demand_forecast_model").versions.get()
    assert forecast.feature_versions == {"rolling_7d_avg_orders": claimed} and forecast.lineage_complete == 6
    assert "rmse" in forecast.metrics
    feature = Feature.objects.get(name="rolling_7d_avg_orders")
    latest = feature.versions.order_by("-created_at", "-id").first()
    assert latest.version != claimed and latest.null_handling == "zero_fill"  # serving moved on
    churn = Model.objects.get(name="churn-propensity").versions.get()
    assert churn.image_digest == "" and churn.feature_versions == {} and churn.lineage_complete == 4


def test_a_model_the_catalog_cannot_hold_is_reported_and_the_rest_synced(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    too_long, fine = uid("long") + "x" * 200, uid("fine")
    register(client, experiment_id, too_long, model_tags={"mlplatform.team": "fraud"})
    register(client, experiment_id, fine, model_tags={"mlplatform.team": "fraud"})

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED
    assert any(m.startswith(f"{too_long}: not stored:") for m in warnings_of(job))
    assert not Model.objects.filter(name=too_long).exists() and Model.objects.get(name=fine).version_count == 1


def test_a_version_pending_registration_is_read_again(client, experiment_id, admin, django_capture_on_commit_callbacks):
    name = uid("pending")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})
    sync(admin, django_capture_on_commit_callbacks)
    ModelVersion.objects.filter(model__name=name).update(status="PENDING_REGISTRATION")  # as a slow registry leaves it

    job = sync(admin, django_capture_on_commit_callbacks)

    assert ModelVersion.objects.get(model__name=name).status == "READY" and job.result["versions_written"] == 1


def test_sync_command_runs_inline_or_only_queues(client, experiment_id, admin):
    name = uid("commanded")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})
    out = StringIO()

    call_command("sync_mlflow", "--full", stdout=out)

    job = Job.objects.get(kind="catalog.sync_mlflow")
    assert job.status == JobStatus.SUCCEEDED and job.params == {"full": True}
    printed = out.getvalue()
    assert "Synced: " in printed and "models_seen=" in printed and f"{name}: 1 versions, 1 written." in printed
    assert Model.objects.filter(name=name).exists()
    call_command("sync_mlflow", "--async", stdout=StringIO())
    assert Job.objects.filter(kind="catalog.sync_mlflow", status=JobStatus.QUEUED).count() == 1
