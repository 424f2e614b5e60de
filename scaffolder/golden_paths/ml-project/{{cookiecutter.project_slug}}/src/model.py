"""The model and its evaluation, without MLflow (so the tests need no server)."""

from __future__ import annotations

from typing import Any

{% if cookiecutter.task == "classification" -%}
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
{%- else -%}
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
{%- endif %}
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

{% if cookiecutter.task == "classification" -%}
PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 500}
{%- else -%}
PARAMS: dict[str, Any] = {"alpha": 1.0}
{%- endif %}


def build(params: dict[str, Any] | None = None) -> Pipeline:
    params = {**PARAMS, **(params or {})}
{%- if cookiecutter.task == "classification" %}
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(**params))])
{%- else %}
    return Pipeline([("scale", StandardScaler()), ("model", Ridge(**params))])
{%- endif %}


def evaluate(model: Pipeline, features, target) -> dict[str, float]:
{%- if cookiecutter.task == "classification" %}
    predicted = model.predict(features)
    scores = model.predict_proba(features)[:, 1]
    return {"accuracy": float(accuracy_score(target, predicted)), "auc": float(roc_auc_score(target, scores))}
{%- else %}
    predicted = model.predict(features)
    return {"r2": float(r2_score(target, predicted)), "mae": float(mean_absolute_error(target, predicted))}
{%- endif %}
