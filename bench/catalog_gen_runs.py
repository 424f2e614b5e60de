"""The ``mlflow-runs`` side of the bench catalog: the run behind every registry version, in MLflow's tracking tables.

Each run carries the lineage contract's tags (catalog/services/lineage.py), params, metrics and, for
some, a logged dataset input; the registered models get the ``mlplatform.*`` tags the sync reads.
Used by ``bench.catalog_gen`` when it fills the ``mlflow-runs`` database for ``catalog_sync``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from bench.catalog_gen import FEATURES, RISK_TIERS, SEED, UNREGISTERED_FEATURE, CatalogSpec, ModelSpec, _hex


class RunsWriter:
    """The runs behind the registry's versions, in MLflow's tracking tables, written in batches."""

    def __init__(self, spec: CatalogSpec, db_uri: str) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlExperiment
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
        from sqlalchemy import insert

        from catalog.services.features import feature_version_hash

        self.rnd = random.Random(SEED + 2)  # apart from the registry's, so its rows stay the same
        self.features = [(name, feature_version_hash(d)) for name, d in FEATURES.items()]
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.count = 0
        # Experiment 0 ("Default", made by the tracking store) holds the runs of models without a project.
        self.experiments = {name: i for i, (name, _, _) in enumerate(spec.projects, start=1)}
        store = TrackingStore(db_uri, "mlflow-artifacts:/")
        with store.ManagedSessionMaker() as session:
            session.execute(
                insert(SqlExperiment),
                [
                    {
                        "experiment_id": i,
                        "name": name,
                        "artifact_location": f"mlflow-artifacts:/{i}",
                        "lifecycle_stage": "active",
                        "creation_time": 1_690_000_000_000,
                        "last_update_time": 1_690_000_000_000,
                    }
                    for name, i in self.experiments.items()
                ],
            )
        store.engine.dispose()
        self.spec = spec

    def model_tags(self) -> list[dict[str, str]]:
        tags = []
        for m in self.spec.models:
            values = {
                "mlplatform.team": m.team,
                "mlplatform.task": m.task,
                "mlplatform.framework": m.framework,
                "mlplatform.risk_tier": self.rnd.choice(RISK_TIERS),
            }
            if m.project:
                values["mlplatform.project"] = m.project
            tags += [{"name": m.name, "key": k, "value": v} for k, v in values.items()]
        return tags

    def _add_row(self, table: str, **row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def add(self, m: ModelSpec, r: dict[str, Any]) -> None:
        """One run for one version: its lineage has r["lineage"] of the six components (at least three)."""
        rnd, run_id, lineage = self.rnd, r["run_id"], r["lineage"]
        experiment = self.experiments.get(m.project or "", 0)
        self.count += 1
        self._add_row(
            "runs",
            run_uuid=run_id,
            name=f"{m.name}-v{r['version']}",
            source_type="LOCAL",
            source_name="train.py",
            entry_point_name="",
            user_id="bench",
            status="FINISHED",
            start_time=r["created_ms"] - 900_000,
            end_time=r["created_ms"] - 60_000,
            source_version=r["commit"],
            lifecycle_stage="active",
            artifact_uri=f"mlflow-artifacts:/{experiment}/{run_id}/artifacts",
            experiment_id=experiment,
        )
        tags = {"mlflow.source.git.commit": r["commit"], "mlflow.runName": f"{m.name}-v{r['version']}"}
        tags["mlflow.user"] = "bench"
        if lineage >= 3:
            if rnd.random() < 0.3:  # a logged dataset input instead of the tag
                self._dataset_input(m, run_id, experiment)
            else:
                tags["mlplatform.data_snapshot"] = f"s3://lake/{m.name}/snapshot-{r['version']}"
        if lineage >= 4:
            tags["mlplatform.image_digest"] = "sha256:" + _hex(rnd, 64)
        if lineage >= 5:
            claimed = dict(rnd.sample(self.features, rnd.randint(1, 3)))
            if rnd.random() < 0.02:
                claimed[UNREGISTERED_FEATURE[0]] = UNREGISTERED_FEATURE[1]
            tags["mlplatform.feature_versions"] = json.dumps(claimed, sort_keys=True)
            tags["mlplatform.features_pinned"] = "true" if lineage == 6 else "false"
        for key, value in tags.items():
            self._add_row("tags", key=key, value=value, run_uuid=run_id)
        for key, value in r["params"].items():
            self._add_row("params", key=key, value=str(value), run_uuid=run_id)
        for key, value in r["metrics"].items():
            metric = {"key": key, "value": value, "timestamp": r["created_ms"], "step": 0, "is_nan": False}
            self._add_row("metrics", **metric, run_uuid=run_id)
            self._add_row("latest_metrics", **metric, run_uuid=run_id)

    def _dataset_input(self, m: ModelSpec, run_id: str, experiment: int) -> None:
        name, digest = f"{m.name.split('-')[0]}_events", _hex(self.rnd, 8)
        dataset_uuid, input_uuid = _hex(self.rnd, 32), _hex(self.rnd, 32)
        self._add_row(
            "datasets",
            dataset_uuid=dataset_uuid,
            experiment_id=experiment,
            name=name,
            digest=digest,
            dataset_source_type="s3",
            dataset_source=json.dumps({"uri": f"s3://lake/{name}/{digest}"}),
            dataset_schema=None,
            dataset_profile=None,
        )
        self._add_row(
            "inputs",
            input_uuid=input_uuid,
            source_type="DATASET",
            source_id=dataset_uuid,
            destination_type="RUN",
            destination_id=run_id,
            step=0,
        )
        self._add_row("input_tags", input_uuid=input_uuid, name="mlflow.data.context", value="training")

    def flush(self, session: Any) -> None:
        from mlflow.store.tracking.dbmodels import models as t
        from sqlalchemy import insert

        tables = {
            "runs": t.SqlRun,
            "tags": t.SqlTag,
            "params": t.SqlParam,
            "metrics": t.SqlMetric,
            "latest_metrics": t.SqlLatestMetric,
            "datasets": t.SqlDataset,
            "inputs": t.SqlInput,
            "input_tags": t.SqlInputTag,
        }
        for table, cls in tables.items():  # parents first
            if self.rows.get(table):
                session.execute(insert(cls), self.rows[table])
        self.rows.clear()
