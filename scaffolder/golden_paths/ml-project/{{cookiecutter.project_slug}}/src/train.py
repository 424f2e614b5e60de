"""Train, evaluate, and log to MLflow following the portal's lineage contract; register a model version.

    MLFLOW_TRACKING_URI=http://… python -m src.train
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from src import data
from src.model import PARAMS, build, evaluate

PROJECT = "{{ cookiecutter.project_slug }}"
TEAM = "{{ cookiecutter.mlplatform_team }}"
MODEL_NAME = PROJECT
ROOT = Path(__file__).resolve().parent.parent
DEFINITION_FIELDS = {
    "computation_logic": "computationLogic",
    "null_handling": "nullHandling",
    "data_type": "dataType",
    "source_table": "sourceTable",
}


def feature_versions() -> dict[str, str]:
    """The catalog's versions of the features mlplatform.yaml declares: the first 12 hex characters of
    SHA-256 over the definition (content-addressed, so the catalog computes the same)."""
    import yaml

    versions = {}
    for doc in yaml.safe_load_all((ROOT / "mlplatform.yaml").read_text(encoding="utf-8")):
        if doc and doc.get("kind") == "Feature":
            definition = {field: doc["spec"][key] for field, key in DEFINITION_FIELDS.items()}
            digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
            versions[doc["metadata"]["name"]] = digest[:12]
    return versions


def code_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def environment_digest() -> str:
    """The image digest when running in the container, else the digest of the dependency declaration."""
    if os.environ.get("IMAGE_DIGEST"):
        return os.environ["IMAGE_DIGEST"]
    lock = ROOT / "uv.lock" if (ROOT / "uv.lock").exists() else ROOT / "pyproject.toml"
    return "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest()


def main() -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT))
    frame = data.load_frame()
    x_train, x_test, y_train, y_test = data.split(frame)
    with mlflow.start_run() as run:
        mlflow.set_tags(
            {
                "mlflow.source.git.commit": code_commit(),
                "mlplatform.feature_versions": json.dumps(feature_versions()),
                "mlplatform.features_pinned": "true",
                "mlplatform.image_digest": environment_digest(),
                "mlplatform.project": PROJECT,
                "mlplatform.team": TEAM,
            }
        )
        mlflow.log_input(mlflow.data.from_pandas(frame, name=data.DATASET_NAME, targets=data.TARGET), context="training")
        mlflow.log_params(PARAMS)
        model = build().fit(x_train, y_train)
        metrics = evaluate(model, x_test, y_test)
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=MODEL_NAME, input_example=x_test.head(3)
        )
    client = MlflowClient()
    for key, value in {
        "mlplatform.team": TEAM,
        "mlplatform.project": PROJECT,
        "mlplatform.task": "{{ cookiecutter.task }}",
        "mlplatform.framework": "scikit-learn",
        "mlplatform.workload_type": "training",
    }.items():
        client.set_registered_model_tag(MODEL_NAME, key, value)
    print(f"run {run.info.run_id}: {json.dumps(metrics)}")
    print(f"registered {MODEL_NAME} version {info.registered_model_version}")


if __name__ == "__main__":
    main()
