"""Demo models in a real MLflow, following the lineage contract (catalog/services/lineage.py).

Small scikit-learn models trained on generated data in a few seconds. Some versions carry all
six lineage components, some lack a few, so the catalog's completeness view and the governance
gates have something real to show. ``demand_forecast_model`` was trained on the first definition
of ``rolling_7d_avg_orders``; the second definition is registered afterwards, so serving has
moved on (seed 004's training/serving skew).

Idempotent: versions are created only up to each demo model's count; tags and aliases are set
only when they differ; feature definitions are content-addressed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import RestException

from catalog.services import lineage as contract
from catalog.services.features import feature_register
from catalog.services.mlflow_reads import mlflow_probe, name_filter
from portal.context import audit_context
from portal.models import Team

EXPERIMENT = "portal-demo"
FORECAST_FEATURE = "rolling_7d_avg_orders"
ROLLING_V1 = {
    "computation_logic": (
        "AVG(order_count) OVER (PARTITION BY customer_id ORDER BY date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)"
    ),
    "null_handling": "forward_fill",
    "data_type": "float32",
    "source_table": "orders_daily",
}
ROLLING_V2 = ROLLING_V1 | {
    "computation_logic": (
        "AVG(COALESCE(order_count, 0)) OVER (PARTITION BY customer_id ORDER BY date "
        "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)"
    ),
    "null_handling": "zero_fill",
}
# Features the other demo models were trained on: (name, team, definition).
OTHER_FEATURES = [
    (
        "card_txn_count_1h",
        "fraud",
        {
            "computation_logic": "COUNT(*) OVER (PARTITION BY card_id ORDER BY ts RANGE INTERVAL '1 hour' PRECEDING)",
            "null_handling": "zero_fill",
            "data_type": "int32",
            "source_table": "card_transactions",
        },
    ),
    (
        "credit_utilization_ratio",
        "credit",
        {
            "computation_logic": "balance / NULLIF(credit_limit, 0)",
            "null_handling": "drop",
            "data_type": "float32",
            "source_table": "credit_accounts_monthly",
        },
    ),
]

# Lineage components a demo version carries: code, data (tag), dataset (log_input), features, image.
ALL = frozenset({"code", "dataset", "features", "image"})


@dataclass(frozen=True)
class DemoVersion:
    hyper: dict[str, float]
    parts: frozenset[str] = ALL
    alias: str = ""
    description: str = ""


@dataclass(frozen=True)
class DemoModel:
    name: str
    team: str
    task: str
    risk: str
    project: str
    description: str
    dataset: tuple[str, str]  # name, source URI
    features: tuple[str, ...]
    versions: tuple[DemoVersion, ...]
    tags: dict[str, str] = field(default_factory=dict)
    pins_features: bool = True  # demand_forecast_model does not: the seed's parity story needs it unpinned


DEMO_MODELS = [
    DemoModel(
        name="fraud-detection",
        team="fraud",
        task="classification",
        risk="medium",
        project="card-fraud",
        description="Scores card transactions for fraud in real time.",
        dataset=("card_transactions", "s3://ml-demo/card_transactions/2026-10"),
        features=("card_txn_count_1h",),
        versions=(
            DemoVersion({"C": 0.3}, frozenset({"code"}), description="First baseline; data by tag only."),
            DemoVersion({"C": 1.0}, alias="production", description="Adds the hourly transaction count."),
            DemoVersion({"C": 3.0}, alias="staging", description="Less regularisation."),
        ),
    ),
    DemoModel(
        name="credit-scoring",
        team="credit",
        task="classification",
        risk="high",
        project="credit-decisioning",
        description="Probability of default for new credit applications.",
        dataset=("credit_applications", "s3://ml-demo/credit_applications/2026-09"),
        features=("credit_utilization_ratio",),
        versions=(DemoVersion({"C": 0.5}, description="Logistic scorecard."),),
    ),
    DemoModel(
        name="demand_forecast_model",
        team="forecasting",
        task="forecasting",
        risk="low",
        project="demand-planning",
        description="Daily order volume per customer, seven days ahead.",
        dataset=("orders_daily", "s3://ml-demo/orders_daily/2026-11-01"),
        features=(FORECAST_FEATURE,),
        versions=(DemoVersion({"alpha": 1.0}, description="Ridge on the rolling seven-day average."),),
        tags={contract.MODEL_TAG_WORKLOAD: "batch"},
        pins_features=False,
    ),
    DemoModel(
        name="churn-propensity",
        team="fraud",
        task="classification",
        risk="low",
        project="",
        description="Which cardholders are likely to close their account (work in progress).",
        dataset=("cardholders", "s3://ml-demo/cardholders/2026-10"),
        features=(),
        versions=(
            DemoVersion({"C": 1.0}, frozenset({"code", "dataset"}), description="No image, no feature snapshot."),
        ),
    ),
]


class DemoSetupError(RuntimeError):
    pass


def seed_mlflow_demo(tracking_uri: str) -> list[str]:
    """Register the demo models in MLflow and their features in the catalog. Returns what was done."""
    mlflow_probe(tracking_uri)
    teams = {t.slug: t for t in Team.objects.filter(slug__in={m.team for m in DEMO_MODELS})}
    missing = sorted({m.team for m in DEMO_MODELS} - set(teams))
    if missing:
        raise DemoSetupError(f"Teams {', '.join(missing)} are missing: run `manage.py seed_demo` first.")
    client = MlflowClient(tracking_uri=tracking_uri)
    done: list[str] = []
    with audit_context(request_id="demo-mlflow-seed"):
        claimed = {FORECAST_FEATURE: _register(FORECAST_FEATURE, teams["forecasting"], ROLLING_V1, done)}
        for name, team, definition in OTHER_FEATURES:
            claimed[name] = _register(name, teams[team], definition, done)
        experiment_id = _experiment(client)
        for spec in DEMO_MODELS:
            _seed_model(client, experiment_id, spec, claimed, done)
        _register(FORECAST_FEATURE, teams["forecasting"], ROLLING_V2, done)  # serving moved on
    return done


def _register(name: str, team: Team, definition: dict[str, str], done: list[str]) -> str:
    registered = feature_register(actor=None, name=name, team=team, **definition)
    if registered.created:
        done.append(f"feature {name}@{registered.version.version} registered")
    return registered.version.version


def _experiment(client: MlflowClient) -> str:
    existing = client.get_experiment_by_name(EXPERIMENT)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(EXPERIMENT, tags={"mlplatform.demo": "true"})


def _seed_model(
    client: MlflowClient, experiment_id: str, spec: DemoModel, claimed: dict[str, str], done: list[str]
) -> None:
    tags = {
        contract.MODEL_TAG_TEAM: spec.team,
        contract.MODEL_TAG_TASK: spec.task,
        contract.MODEL_TAG_FRAMEWORK: "sklearn",
        contract.MODEL_TAG_RISK_TIER: spec.risk,
        **({contract.MODEL_TAG_PROJECT: spec.project} if spec.project else {}),
        **spec.tags,
    }
    try:
        rm = client.get_registered_model(spec.name)
    except RestException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        rm = client.create_registered_model(spec.name, tags=tags, description=spec.description)
        done.append(f"model {spec.name} created")
    for key, value in tags.items():
        if (rm.tags or {}).get(key) != value:
            client.set_registered_model_tag(spec.name, key, value)
    versions = client.search_model_versions(filter_string=name_filter(spec.name), max_results=1000)
    numbers = sorted(int(v.version) for v in versions if v.name == spec.name)
    for index in range(len(numbers), len(spec.versions)):
        numbers.append(_train_and_register(client, experiment_id, spec, index, claimed))
        done.append(f"model {spec.name} v{numbers[-1]} registered")
    for number, version in zip(numbers, spec.versions, strict=False):
        if version.alias and (rm.aliases or {}).get(version.alias) != str(number):
            client.set_registered_model_alias(spec.name, version.alias, str(number))
            done.append(f"model {spec.name}@{version.alias} → v{number}")


def _train_and_register(
    client: MlflowClient, experiment_id: str, spec: DemoModel, index: int, claimed: dict[str, str]
) -> int:
    import sklearn
    from mlflow import sklearn as mlflow_sklearn

    version = spec.versions[index]
    seed = int(hashlib.sha256(f"{spec.name}:{index}".encode()).hexdigest()[:8], 16)
    X, y = _data(spec.task, seed)
    model, metrics = _fit(spec.task, version.hyper, X, y)
    commit = hashlib.sha1(f"{spec.name}:{index}:code".encode()).hexdigest()
    tags: dict[str, str] = {
        contract.TAG_CODE_COMMIT: commit,
        "mlflow.source.git.repoURL": f"https://git.example.com/ml/{spec.name}",
    }
    data_uri = f"{spec.dataset[1]}#v{index + 1}"
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()[:8]
    if "dataset" not in version.parts:
        tags[contract.TAG_DATA_SNAPSHOT] = f"{data_uri}@{digest}"
    if "features" in version.parts and spec.features:
        tags[contract.TAG_FEATURE_VERSIONS] = json.dumps({name: claimed[name] for name in spec.features})
        if spec.pins_features:
            tags[contract.TAG_FEATURES_PINNED] = "true"
    if "image" in version.parts:
        tags[contract.TAG_IMAGE_DIGEST] = "sha256:" + hashlib.sha256(f"{spec.name}:{index}:image".encode()).hexdigest()
    run = client.create_run(experiment_id, tags=tags, run_name=f"{spec.name}-{index + 1}")
    run_id, now = run.info.run_id, int(time.time() * 1000)
    params = {**{k: str(v) for k, v in version.hyper.items()}, "n_samples": str(len(y)), "seed": str(seed)}
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    if "dataset" in version.parts:
        dataset = Dataset(spec.dataset[0], digest, "s3", json.dumps({"uri": data_uri}))
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model")
        mlflow_sklearn.save_model(model, path, pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        client.log_artifacts(run_id, path, "model")
    client.set_terminated(run_id)
    mv = client.create_model_version(
        spec.name, source=f"{run.info.artifact_uri}/model", run_id=run_id, description=version.description
    )
    return int(mv.version)


def _data(task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 6))
    weights = np.array([1.5, -2.0, 0.7, 0.0, 0.3, -0.4])
    signal = X @ weights + rng.normal(scale=0.8, size=600)
    if task == "forecasting":
        return X, 40 + 6 * signal
    return X, (signal > 0.4).astype(int)


def _fit(task: str, hyper: dict[str, float], X: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, roc_auc_score

    split = int(len(y) * 0.75)
    if task == "forecasting":
        model = Ridge(**hyper).fit(X[:split], y[:split])
        predicted = model.predict(X[split:])
        rmse = float(np.sqrt(mean_squared_error(y[split:], predicted)))
        return model, {"rmse": round(rmse, 4), "mae": round(float(mean_absolute_error(y[split:], predicted)), 4)}
    model = LogisticRegression(max_iter=500, **hyper).fit(X[:split], y[:split])
    scores = model.predict_proba(X[split:])[:, 1]
    return model, {
        "accuracy": round(float(accuracy_score(y[split:], scores > 0.5)), 4),
        "auc": round(float(roc_auc_score(y[split:], scores)), 4),
    }
