"""Score a table in chunks with a registered model: python -m src.score INPUT OUTPUT."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

MODEL_URI = "models:/{{ cookiecutter.model_name }}@{{ cookiecutter.model_alias }}"
CHUNK_SIZE = {{ cookiecutter.batch.chunk_size }}
ID_COLUMN = "{{ cookiecutter.batch.id_column }}"
OUTPUT_FORMAT = "{{ cookiecutter.output_format }}"


def chunks(path: Path, size: int = CHUNK_SIZE) -> Iterator[pd.DataFrame]:
    yield from pd.read_csv(path, chunksize=size)


def score_chunk(model, frame: pd.DataFrame, *, version: str) -> pd.DataFrame:
    features = frame.drop(columns=[ID_COLUMN])
    out = pd.DataFrame({ID_COLUMN: frame[ID_COLUMN], "score": model.predict(features)})
    out["model_version"] = version
    return out


def write(frames: Iterator[pd.DataFrame], output: Path, fmt: str = OUTPUT_FORMAT) -> int:
    rows = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as fh:
        for i, frame in enumerate(frames):
            if fmt == "csv":
                frame.to_csv(fh, header=i == 0, index=False)
            else:
                for record in frame.to_dict(orient="records"):
                    fh.write(json.dumps(record, default=str) + "\n")
            rows += len(frame)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", default=MODEL_URI)
    args = parser.parse_args(argv)
    import mlflow

    info = mlflow.models.get_model_info(args.model)
    model = mlflow.pyfunc.load_model(args.model)
    version = str(info.registered_model_version or args.model)
    rows = write((score_chunk(model, c, version=version) for c in chunks(args.input)), args.output)
    print(f"scored {rows} rows with {args.model} (version {version}) into {args.output}")


if __name__ == "__main__":
    main()
