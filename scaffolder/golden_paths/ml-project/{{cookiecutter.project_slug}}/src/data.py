"""The training data. Replace with your own source; keep the dataset name stable for the lineage."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import {% if cookiecutter.task == "classification" %}load_breast_cancer{% else %}load_diabetes{% endif %}
from sklearn.model_selection import train_test_split

DATASET_NAME = "{{ cookiecutter.project_slug }}-training"
TARGET = "target"


def load_frame() -> pd.DataFrame:
    """A small public dataset that ships with scikit-learn (no download)."""
    return {% if cookiecutter.task == "classification" %}load_breast_cancer{% else %}load_diabetes{% endif %}(as_frame=True).frame


def split(frame: pd.DataFrame, *, seed: int = 42):
    features = frame.drop(columns=[TARGET])
    return train_test_split(features, frame[TARGET], test_size=0.25, random_state=seed)
