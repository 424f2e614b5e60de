"""Predict with a registered version: python -m src.predict rows.csv [--model models:/{{ cookiecutter.project_slug }}/latest]."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

MODEL_URI = "models:/{{ cookiecutter.project_slug }}/latest"


def predict(model, rows: pd.DataFrame) -> list:
    return [v.item() if hasattr(v, "item") else v for v in model.predict(rows)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input", help="a CSV file with the feature columns")
    parser.add_argument("--model", default=MODEL_URI)
    args = parser.parse_args(argv)
    import mlflow

    model = mlflow.sklearn.load_model(args.model)
    for value in predict(model, pd.read_csv(args.input)):
        sys.stdout.write(f"{value}\n")


if __name__ == "__main__":
    main()
