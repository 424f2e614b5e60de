"""The sync writes in bulk: the same rows, links and audit events as one write per version, and nothing unchanged.

The first tests call ``model_versions_sync`` directly; the others run the sync against the real
MLflow server of the test session (shared, so each test uses its own model names).
"""

from __future__ import annotations

import json
import math

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from catalog.models import Dataset, Model, ModelVersion, SearchDoc
from catalog.selectors import catalog_search
from catalog.services import mlflow_reads as reads_module
from catalog.services import mlflow_sync as sync_module
from catalog.services.entities import (
    VERSION_FIELDS,
    VersionFromMlflow,
    entity_save,
    model_version_sync,
    model_versions_sync,
)
from catalog.services.features import feature_register
from catalog.services.lineage import DatasetInput, lineage_from_run
from portal.models import AuditEvent, JobStatus, RiskTier, Team
from tests.catalog.factories import make_model
from tests.catalog.test_mlflow_sync import COMPLETE, DEFINITION, catalog_state, register, sync, uid

pytestmark = pytest.mark.django_db


def versions_of(model: Model, *, feature: str, digest: str) -> list[dict]:
    """Three versions as MLflow would hand them over: a shared dataset, a registered and an unknown feature."""
    tags = COMPLETE | {"mlplatform.feature_versions": json.dumps({feature: digest, "ghost": "0123456789ab"})}
    shared = DatasetInput("card_txns", "d1", "s3://b/card_txns")
    return [
        {
            "model": model,
            "version": number,
            "run_id": f"run-{number}",
            "status": "READY",
            "aliases": aliases,
            "description": "",
            "source_uri": f"s3://models/{number}",
            "lineage": lineage_from_run(
                tags=tags, params={"C": str(number)}, metrics={"auc": 0.9}, datasets=[shared, *extra]
            ),
            "created_ms": number,
            "updated_ms": number,
        }
        for number, aliases, extra in [
            (1, [], []),
            (2, ["staging"], [DatasetInput("card_txns", "d2", "s3://b/card_txns")]),
            (3, ["production", "champion"], []),
        ]
    ]


def stored(model: Model) -> list[tuple]:
    return [
        (
            *(getattr(mv, f) for f in VERSION_FIELDS),
            sorted((s.dataset.name, s.digest) for s in mv.dataset_snapshots.all()),
            sorted(f"{fv.feature.name}@{fv.version}" for fv in mv.feature_version_links.all()),
        )
        for mv in model.versions.order_by("version")
    ]


def events_of(model: Model) -> list[tuple]:
    ids = {str(pk): v for pk, v in model.versions.values_list("pk", "version")}
    events = AuditEvent.objects.filter(object_type="catalog.modelversion", object_id__in=ids).order_by("seq")
    return [(e.action, ids[e.object_id], {**json.loads(e.after), "model": None}) for e in events]


def test_a_batch_writes_the_same_rows_links_and_audit_events_as_one_write_per_version(demo_users):
    fraud = Team.objects.get(slug="fraud")
    fv = feature_register(actor=None, name="txn_count", team=fraud, **DEFINITION).version
    one_by_one, batched = make_model("one-by-one"), make_model("batched")

    singles = [model_version_sync(**kw) for kw in versions_of(one_by_one, feature="txn_count", digest=fv.version)]
    results = model_versions_sync(
        [VersionFromMlflow(**kw) for kw in versions_of(batched, feature="txn_count", digest=fv.version)]
    )

    assert stored(batched) == stored(one_by_one) and len(stored(batched)) == 3
    assert events_of(batched) == events_of(one_by_one)
    assert [e[0] for e in events_of(batched)] == ["model_version.sync_create"] * 3
    assert [(r.changed, r.problems) for r in results] == [(changed, problems) for _, changed, problems in singles]
    assert results[0].problems == ["claims feature ghost@0123456789ab, which is not registered"]
    assert Dataset.objects.filter(name="card_txns").count() == 1  # one dataset, two snapshots, shared
    assert sorted(Dataset.objects.get(name="card_txns").snapshots.values_list("digest", flat=True)) == ["d1", "d2"]


def test_a_batch_writes_only_the_versions_that_changed(demo_users):
    model = make_model("scorer")
    first = versions_of(model, feature="none", digest="x")
    model_versions_sync([VersionFromMlflow(**kw) for kw in first[:2]])
    untouched = ModelVersion.objects.get(model=model, version=1)
    events = AuditEvent.objects.count()
    again = versions_of(model, feature="none", digest="x")
    again[1]["aliases"] = ["production"]  # v2 moves alias, v1 is as stored, v3 is new
    again[1]["lineage"].datasets = [DatasetInput("orders", "o1", "s3://o")]

    results = model_versions_sync([VersionFromMlflow(**kw) for kw in again])

    assert [r.changed for r in results] == [False, True, True]
    new = AuditEvent.objects.order_by("seq")[events:]
    assert [(e.action, json.loads(e.after)["version"]) for e in new] == [
        ("model_version.sync_update", 2),
        ("model_version.sync_create", 3),
    ]
    v1, v2 = model.versions.get(version=1), model.versions.get(version=2)
    assert (v1.pk, v1.created_at, v1.aliases) == (untouched.pk, untouched.created_at, untouched.aliases)
    assert v2.aliases == ["production"] and [s.digest for s in v2.dataset_snapshots.all()] == ["o1"]
    written = AuditEvent.objects.count()
    assert not any(r.changed for r in model_versions_sync([VersionFromMlflow(**kw) for kw in again]))
    assert AuditEvent.objects.count() == written  # the same batch again writes nothing


def test_versions_written_in_bulk_make_their_models_findable(demo_users):
    models = [make_model(name) for name in ("alpha-scorer", "beta-scorer")]
    batch = [kw for m in models for kw in versions_of(m, feature="none", digest="x")]

    model_versions_sync([VersionFromMlflow(**kw) for kw in batch])

    found = [r["name"] for r in catalog_search({"alias": "champion"}).results]
    assert sorted(found) == ["alpha-scorer", "beta-scorer"]


# --- Against the real MLflow server -----------------------------------------------


@pytest.fixture
def admin(demo_users):
    return demo_users["admin"]


@pytest.fixture
def client(settings, mlflow_server) -> MlflowClient:
    settings.MLFLOW_TRACKING_URI = mlflow_server
    return MlflowClient(tracking_uri=mlflow_server)


@pytest.fixture
def experiment_id(client) -> str:
    existing = client.get_experiment_by_name("sync-tests")
    return existing.experiment_id if existing else client.create_experiment("sync-tests")


def test_an_unchanged_full_resync_reads_everything_and_writes_nothing(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name = uid("steady-full")
    register(client, experiment_id, name, tags=COMPLETE, datasets=[("orders", "o1", "s3://o")])
    register(client, experiment_id, name, model_tags={"mlplatform.team": "credit", "mlplatform.project": uid("p")})
    client.set_registered_model_alias(name, "production", "2")
    sync(admin, django_capture_on_commit_callbacks)
    state = catalog_state()

    job = sync(admin, django_capture_on_commit_callbacks, full=True)

    assert job.status == JobStatus.SUCCEEDED and job.result["runs_read"] >= 2
    assert job.result["versions_written"] == 0 and job.result["models_changed"] == 0
    assert catalog_state() == state  # no row changed, no audit event but the job's own


def test_a_sync_in_small_groups_writes_every_model_version_and_audit_event_once(
    client, experiment_id, admin, django_capture_on_commit_callbacks, monkeypatch
):
    sync(admin, django_capture_on_commit_callbacks)  # everything else in the shared server is now synced
    base = uid("grouped")
    names = [f"{base}-{i}" for i in range(5)]
    for count, name in enumerate(names, start=1):
        for _ in range(count % 3 + 1):
            register(client, experiment_id, name, tags=COMPLETE, model_tags={"mlplatform.team": "fraud"})
    monkeypatch.setattr(sync_module, "MODEL_CHUNK", 2)
    monkeypatch.setattr(reads_module, "RUN_CHUNK", 2)
    calls: list[str] = []
    original = MlflowClient.search_model_versions
    monkeypatch.setattr(
        MlflowClient,
        "search_model_versions",
        lambda self, *a, **k: calls.append(k["filter_string"]) or original(self, *a, **k),
    )

    job = sync(admin, django_capture_on_commit_callbacks)

    counts = {name: Model.objects.get(name=name).versions.count() for name in names}
    assert counts == {name: count % 3 + 1 for count, name in enumerate(names, start=1)}
    assert job.result["versions_written"] == sum(counts.values()) and len(calls) == math.ceil(len(names) / 2)
    models = Model.objects.filter(name__in=names)
    versions = ModelVersion.objects.filter(model__in=models)
    created = AuditEvent.objects.filter(action="model.create", object_id__in=[str(m.pk) for m in models])
    synced = AuditEvent.objects.filter(action="model_version.sync_create", object_id__in=[str(v.pk) for v in versions])
    assert created.count() == len(names) and synced.count() == versions.count()
    assert SearchDoc.objects.filter(kind="model", name__in=names).count() == len(names)


def test_mlflow_failing_mid_sync_keeps_the_groups_written_and_fails_clearly(
    client, experiment_id, admin, django_capture_on_commit_callbacks, monkeypatch
):
    sync(admin, django_capture_on_commit_callbacks)
    base = uid("halfway")
    names = [f"{base}-{letter}" for letter in "abcd"]  # listed by name: groups [a, b] and [c, d]
    runs = {}
    for name in names:
        register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud"})
        runs[name] = client.get_model_version(name, "1").run_id
    monkeypatch.setattr(sync_module, "MODEL_CHUNK", 2)
    original = MlflowClient.search_runs

    def search_runs(self, *args, **kwargs):
        if runs[names[2]] in kwargs["filter_string"]:
            raise MlflowException("connection reset")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "search_runs", search_runs)

    job = sync(admin, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.FAILED and "is not answering: connection reset" in job.error
    assert sorted(Model.objects.filter(name__in=names).values_list("name", flat=True)) == names[:2]
    monkeypatch.setattr(MlflowClient, "search_runs", original)
    job = sync(admin, django_capture_on_commit_callbacks)
    assert job.result["models_created"] == 2 and Model.objects.filter(name__in=names).count() == 4


def test_a_tag_change_updates_only_what_mlflow_sets_and_is_audited(
    client, experiment_id, admin, django_capture_on_commit_callbacks
):
    name = uid("edited")
    register(client, experiment_id, name, model_tags={"mlplatform.team": "fraud", "mlplatform.risk_tier": "low"})
    sync(admin, django_capture_on_commit_callbacks)
    entity_save(actor=None, kind="model", name=name, task="ranking", lifecycle="production")  # edited in the portal
    client.set_registered_model_tag(name, "mlplatform.risk_tier", "high")

    job = sync(admin, django_capture_on_commit_callbacks)

    model = Model.objects.get(name=name)
    assert job.result["models_changed"] == 1 and job.result["versions_written"] == 0
    assert (model.risk_tier, model.task, model.lifecycle) == (RiskTier.HIGH, "ranking", "production")
    event = AuditEvent.objects.filter(action="model.update", object_id=str(model.pk)).latest("seq")
    before, after = json.loads(event.before), json.loads(event.after)
    assert (before["risk_tier"], after["risk_tier"], after["task"]) == (RiskTier.LOW, RiskTier.HIGH, "ranking")
