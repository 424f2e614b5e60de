"""Writes to catalog entities. HTML forms, the API, descriptor locations and the MLflow sync all call these."""

from __future__ import annotations

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
from portal.services.audit import audit_record, snapshot

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
    problems = list(lineage.problems)
    values = {
        "run_id": run_id,
        "status": status,
        "aliases": sorted(aliases),
        "description": description,
        "source_uri": source_uri[:500],
        "metrics": lineage.metrics,
        "params": lineage.params,
        "code_commit": lineage.code_commit,
        "data_snapshot": lineage.data_snapshot,
        "feature_versions": lineage.feature_versions,
        "features_pinned": lineage.features_pinned,
        "image_digest": lineage.image_digest,
        "lineage_complete": lineage.present,
        "mlflow_created_ms": created_ms,
        "mlflow_updated_ms": updated_ms,
    }
    existing = ModelVersion.objects.filter(model=model, version=version).first()
    if existing and all(getattr(existing, k) == v for k, v in values.items()):
        return existing, False, problems
    with transaction.atomic():
        mv, created = ModelVersion.objects.update_or_create(model=model, version=version, defaults=values)
        snapshots = []
        for d in lineage.datasets:
            dataset = Dataset.objects.filter(name=d.name).first()
            if dataset is None:
                dataset = Dataset.objects.create(name=d.name, team=model.team, uri=d.uri, source="mlflow")
            snap, _ = DatasetSnapshot.objects.get_or_create(dataset=dataset, digest=d.digest, defaults={"uri": d.uri})
            snapshots.append(snap)
        mv.dataset_snapshots.set(snapshots)
        linked = []
        for feature_name, version_hash in lineage.feature_versions.items():
            fv = FeatureVersion.objects.filter(feature__name=feature_name, version=version_hash).first()
            if fv is None:
                problems.append(f"claims feature {feature_name}@{version_hash}, which is not registered")
            else:
                linked.append(fv)
        mv.feature_version_links.set(linked)
        audit_record(
            action="model_version.sync_create" if created else "model_version.sync_update",
            obj=mv,
            after={"model": model.name, "version": version, "aliases": values["aliases"], "lineage": lineage.present},
        )
    return mv, True, problems


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
