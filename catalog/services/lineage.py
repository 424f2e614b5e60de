"""The portal's lineage contract: where each of seed 004's six components lives on an MLflow run.

The demo, the sync, the gates, the golden-path templates and external CI pipelines all use
these keys; docs/lineage.md is the published version of this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

TAG_CODE_COMMIT = "mlflow.source.git.commit"
TAG_DATA_SNAPSHOT = "mlplatform.data_snapshot"
TAG_FEATURE_VERSIONS = "mlplatform.feature_versions"
TAG_FEATURES_PINNED = "mlplatform.features_pinned"
TAG_IMAGE_DIGEST = "mlplatform.image_digest"

# Registered-model tags the sync reads for catalog fields.
MODEL_TAG_TEAM = "mlplatform.team"
MODEL_TAG_PROJECT = "mlplatform.project"
MODEL_TAG_TASK = "mlplatform.task"
MODEL_TAG_FRAMEWORK = "mlplatform.framework"
MODEL_TAG_RISK_TIER = "mlplatform.risk_tier"
MODEL_TAG_WORKLOAD = "mlplatform.workload_type"


@dataclass
class DatasetInput:
    name: str
    digest: str
    uri: str = ""


@dataclass
class RunLineage:
    code_commit: str = ""
    data_snapshot: str = ""
    datasets: list[DatasetInput] = field(default_factory=list)
    feature_versions: dict[str, str] = field(default_factory=dict)
    features_pinned: bool = False
    image_digest: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def present(self) -> int:
        return sum(
            bool(x)
            for x in (
                self.code_commit,
                self.data_snapshot,
                self.feature_versions,
                self.image_digest,
                self.params,
                self.metrics,
            )
        )


def lineage_from_run(
    *, tags: dict[str, str], params: dict[str, str], metrics: dict[str, float], datasets: list[DatasetInput]
) -> RunLineage:
    lineage = RunLineage(params=dict(params), metrics=dict(metrics), datasets=list(datasets))
    lineage.code_commit = tags.get(TAG_CODE_COMMIT, "")[:64]
    snapshot = tags.get(TAG_DATA_SNAPSHOT, "")
    if not snapshot and datasets:
        snapshot = ", ".join(f"{d.name}@{d.digest}" for d in datasets)
    lineage.data_snapshot = snapshot[:300]
    raw = tags.get(TAG_FEATURE_VERSIONS)
    if raw:
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
                raise ValueError
            lineage.feature_versions = {str(k): v for k, v in parsed.items()}
        except ValueError:
            lineage.problems.append(f"tag {TAG_FEATURE_VERSIONS} is not a JSON object of name → version")
    lineage.features_pinned = tags.get(TAG_FEATURES_PINNED, "").strip().lower() == "true"
    digest = tags.get(TAG_IMAGE_DIGEST, "")
    if digest and not digest.startswith("sha256:"):
        lineage.problems.append(f"tag {TAG_IMAGE_DIGEST} should be 'sha256:…', got {digest[:40]!r}")
    lineage.image_digest = digest[:100]
    return lineage
