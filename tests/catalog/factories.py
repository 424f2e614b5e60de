"""Small builders for catalog rows (versions as MLflow would have synced them)."""

from __future__ import annotations

from catalog.models import Model, ModelVersion
from catalog.services.entities import entity_save, model_version_sync
from catalog.services.lineage import DatasetInput, lineage_from_run
from portal.models import Team

COMPLETE_TAGS = {
    "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567",
    "mlplatform.image_digest": "sha256:" + "ab" * 32,
}


def make_model(name: str, team: str = "fraud", **fields) -> Model:
    model, _ = entity_save(actor=None, kind="model", name=name, team=Team.objects.get(slug=team), **fields)
    return model


def make_version(
    model: Model, version: int, *, tags=None, params=None, metrics=None, datasets=(), aliases=(), bare=False
):
    """A synced version; code commit and image digest are present unless ``bare``."""
    lineage = lineage_from_run(
        tags=(tags or {}) if bare else COMPLETE_TAGS | (tags or {}),
        params={"max_depth": "4"} if params is None else params,
        metrics={"accuracy": 0.93, "auc": 0.88} if metrics is None else metrics,
        datasets=[DatasetInput(*d) for d in datasets],
    )
    mv, _, problems = model_version_sync(
        model=model,
        version=version,
        run_id=f"run{model.pk}x{version}",
        status="READY",
        aliases=list(aliases),
        description="",
        source_uri="",
        lineage=lineage,
        created_ms=version,
        updated_ms=version,
    )
    Model.objects.filter(pk=model.pk).update(version_count=model.versions.count(), latest_version=version)
    return mv, problems


def complete_version(model: Model, version: int, features: dict, **kwargs) -> ModelVersion:
    import json

    tags = {"mlplatform.feature_versions": json.dumps(features), "mlplatform.data_snapshot": "s3://orders@v1"}
    return make_version(model, version, tags=tags, **kwargs)[0]
