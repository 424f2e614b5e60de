"""Writes to catalog entities. HTML forms, the API, descriptor locations and the MLflow sync all call these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from catalog.models import (
    Dataset,
    DatasetSnapshot,
    Deployment,
    FeatureVersion,
    Model,
    ModelVersion,
    Project,
)
from catalog.permissions import require_delete, require_write
from catalog.services.lineage import RunLineage
from portal.models import Team
from portal.services.audit import PendingEvent, audit_record, audit_record_many, snapshot

KINDS = {"project": Project, "model": Model, "dataset": Dataset}


def entity_save(*, actor, kind: str, name: str, team: Team | None = None, **fields: Any):
    """Create or update a project, model or dataset by name. Returns (entity, created)."""
    cls = KINDS[kind]
    with transaction.atomic():
        entity = cls.objects.select_for_update().filter(name=name).first()
        created = entity is None
        if created:
            if team is None:
                raise ValidationError({"team": f"A new {kind} needs an owner team."})
            require_write(actor, team)
            entity = cls(name=name, team=team)
            before = None
        else:
            require_write(actor, entity.team)
            if team is not None and team != entity.team:
                require_write(actor, team)  # moving needs rights on both sides
                entity.team = team
            before = snapshot(entity)
        for key, value in fields.items():
            setattr(entity, key, value)
        entity.full_clean()
        if not created and _without_auto(snapshot(entity)) == _without_auto(before):
            return entity, False
        entity.save()
        audit_record(
            action=f"{kind}.{'create' if created else 'update'}", obj=entity, before=before, after=snapshot(entity)
        )
    return entity, created


def _without_auto(data: dict | None) -> dict | None:
    if data is None:
        return None
    return {k: v for k, v in data.items() if k not in ("created_at", "updated_at")}


def entity_delete(*, actor, entity) -> None:
    require_delete(actor, entity.team)
    with transaction.atomic():
        audit_record(action=f"{entity.kind}.delete", obj=entity, before=snapshot(entity))
        entity.delete()


def model_version_sync(
    *,
    model: Model,
    version: int,
    run_id: str,
    status: str,
    aliases: list[str],
    description: str,
    source_uri: str,
    lineage: RunLineage,
    created_ms: int | None,
    updated_ms: int | None,
) -> tuple[ModelVersion, bool, list[str]]:
    """Upsert a version from MLflow (system write, no actor check). Returns (version, changed, problems)."""
    item = VersionFromMlflow(
        model=model,
        version=version,
        run_id=run_id,
        status=status,
        aliases=aliases,
        description=description,
        source_uri=source_uri,
        lineage=lineage,
        created_ms=created_ms,
        updated_ms=updated_ms,
    )
    synced = model_versions_sync([item])[0]
    return synced.version, synced.changed, synced.problems


@dataclass
class VersionFromMlflow:
    """A model version as MLflow has it: what ``model_versions_sync`` writes."""

    model: Model
    version: int
    run_id: str
    status: str
    aliases: list[str]
    description: str
    source_uri: str
    lineage: RunLineage
    created_ms: int | None
    updated_ms: int | None

    def values(self) -> dict[str, Any]:
        """The stored fields (``VERSION_FIELDS``), as they should read after the sync."""
        lineage = self.lineage
        return {
            "run_id": self.run_id,
            "status": self.status,
            "aliases": sorted(self.aliases),
            "description": self.description,
            "source_uri": self.source_uri[:500],
            "metrics": lineage.metrics,
            "params": lineage.params,
            "code_commit": lineage.code_commit,
            "data_snapshot": lineage.data_snapshot,
            "feature_versions": lineage.feature_versions,
            "features_pinned": lineage.features_pinned,
            "image_digest": lineage.image_digest,
            "lineage_complete": lineage.present,
            "mlflow_created_ms": self.created_ms,
            "mlflow_updated_ms": self.updated_ms,
        }


@dataclass
class VersionSynced:
    version: ModelVersion
    changed: bool
    problems: list[str]


VERSION_FIELDS = [
    "run_id",
    "status",
    "aliases",
    "description",
    "source_uri",
    "metrics",
    "params",
    "code_commit",
    "data_snapshot",
    "feature_versions",
    "features_pinned",
    "image_digest",
    "lineage_complete",
    "mlflow_created_ms",
    "mlflow_updated_ms",
]
BATCH = 1000  # rows per bulk statement, ids per IN (...) list


def model_versions_sync(items: list[VersionFromMlflow]) -> list[VersionSynced]:
    """Upsert versions from MLflow in bulk (system writes, no actor check); one result per item, in order.

    A version whose stored fields already match is not written. The written ones are inserted or
    updated in bulk with their dataset snapshots and feature-version links, and each gets its audit
    event (``model_version.sync_create`` / ``sync_update``), appended in one batch. Bulk writes send
    no signals, so the search index entries of their models are refreshed here.
    """
    from catalog.services.search_index import search_index_refresh

    stored = {
        (mv.model_id, mv.version): mv
        for mv in ModelVersion.objects.filter(model_id__in={item.model.pk for item in items}).order_by()
    }
    results: list[VersionSynced] = []
    written: list[tuple[VersionFromMlflow, VersionSynced, bool]] = []
    for item in items:
        values = item.values()
        mv = stored.get((item.model.pk, item.version))
        synced = VersionSynced(mv, False, list(item.lineage.problems))
        results.append(synced)
        if mv is not None and all(getattr(mv, k) == v for k, v in values.items()):
            continue
        created = mv is None
        synced.version = mv = mv or ModelVersion(model=item.model, version=item.version)
        for key, value in values.items():
            setattr(mv, key, value)
        synced.changed = True
        written.append((item, synced, created))
    if not written:
        return results
    with transaction.atomic():
        ModelVersion.objects.bulk_create([s.version for _, s, created in written if created], batch_size=BATCH)
        ModelVersion.objects.bulk_update(
            [s.version for _, s, created in written if not created], VERSION_FIELDS, batch_size=BATCH
        )
        _link_lineage(written)
        audit_record_many(
            [
                PendingEvent(
                    action="model_version.sync_create" if created else "model_version.sync_update",
                    object_type=ModelVersion._meta.label_lower,
                    object_id=str(s.version.pk),
                    after={
                        "model": item.model.name,
                        "version": item.version,
                        "aliases": s.version.aliases,
                        "lineage": item.lineage.present,
                    },
                )
                for item, s, created in written
            ]
        )
        search_index_refresh("model", {item.model.pk for item, _, _ in written})
    return results


def _link_lineage(written: list[tuple[VersionFromMlflow, VersionSynced, bool]]) -> None:
    """Point the written versions at their dataset snapshots and feature versions (created or found in bulk).

    An unregistered feature version is not linked; it is added to the version's problems.
    """
    datasets = {
        d.name: d for d in Dataset.objects.filter(name__in={d.name for i, _, _ in written for d in i.lineage.datasets})
    }
    digests: dict[tuple[int, str], str] = {}  # (dataset id, digest) -> uri of the first version naming it
    for item, _, _ in written:
        for d in item.lineage.datasets:
            if d.name not in datasets:  # few: created one by one, so the search index sees them
                datasets[d.name] = Dataset.objects.create(name=d.name, team=item.model.team, uri=d.uri, source="mlflow")
            digests.setdefault((datasets[d.name].pk, d.digest), d.uri)
    snapshots: dict[tuple[int, str], int] = {}
    keys = list(digests)
    for chunk in _chunks(keys):
        found = DatasetSnapshot.objects.filter(
            dataset_id__in={k[0] for k in chunk}, digest__in={k[1] for k in chunk}
        ).values_list("dataset_id", "digest", "pk")
        snapshots.update({(dataset_id, digest): pk for dataset_id, digest, pk in found})
    missing = [
        DatasetSnapshot(dataset_id=k[0], digest=k[1], uri=uri) for k, uri in digests.items() if k not in snapshots
    ]
    snapshots.update(
        {(s.dataset_id, s.digest): s.pk for s in DatasetSnapshot.objects.bulk_create(missing, batch_size=BATCH)}
    )
    claimed = {name for item, _, _ in written for name in item.lineage.feature_versions}
    features = {
        (name, version): pk
        for pk, name, version in FeatureVersion.objects.filter(feature__name__in=claimed).values_list(
            "pk", "feature__name", "version"
        )
    }
    snapshot_links, feature_links = ModelVersion.dataset_snapshots.through, ModelVersion.feature_version_links.through
    for chunk in _chunks([s.version.pk for _, s, created in written if not created]):
        snapshot_links.objects.filter(modelversion_id__in=chunk).delete()
        feature_links.objects.filter(modelversion_id__in=chunk).delete()
    snapshot_rows, feature_rows = [], []
    for item, synced, _ in written:
        pk = synced.version.pk
        linked = {snapshots[(datasets[d.name].pk, d.digest)] for d in item.lineage.datasets}
        snapshot_rows += [snapshot_links(modelversion_id=pk, datasetsnapshot_id=s) for s in sorted(linked)]
        for name, version in item.lineage.feature_versions.items():
            if (name, version) in features:
                feature_rows.append(feature_links(modelversion_id=pk, featureversion_id=features[(name, version)]))
            else:
                synced.problems.append(f"claims feature {name}@{version}, which is not registered")
    snapshot_links.objects.bulk_create(snapshot_rows, batch_size=BATCH)
    feature_links.objects.bulk_create(feature_rows, batch_size=BATCH)


def _chunks(items: list, size: int = BATCH) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def deployment_record(
    *, actor, model_version: ModelVersion, environment: str, endpoint: str = "", serving_config=None, replicas: int = 1
) -> Deployment:
    """Record (or update) which version runs in an environment; one version per model and environment."""
    require_write(actor, model_version.model.team)
    with transaction.atomic():
        previous = (
            Deployment.objects.select_for_update()
            .filter(model_version__model=model_version.model, environment=environment)
            .exclude(model_version=model_version)
        )
        before = [str(d) for d in previous]
        previous.delete()
        deployment, _ = Deployment.objects.update_or_create(
            model_version=model_version,
            environment=environment,
            defaults={"endpoint": endpoint, "serving_config": serving_config or {}, "replicas": replicas},
        )
        deployment.full_clean()
        audit_record(
            action="deployment.record",
            obj=deployment,
            before={"replaced": before} if before else None,
            after={
                "model": model_version.model.name,
                "version": model_version.version,
                "environment": environment,
                "endpoint": endpoint,
                "replicas": replicas,
            },
        )
    return deployment


def deployment_remove(*, actor, deployment: Deployment) -> None:
    require_delete(actor, deployment.model_version.model.team)
    with transaction.atomic():
        audit_record(action="deployment.remove", obj=deployment, before={"deployment": str(deployment)})
        deployment.delete()
