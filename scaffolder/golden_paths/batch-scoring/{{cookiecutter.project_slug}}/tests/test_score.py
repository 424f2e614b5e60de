import json

import pandas as pd
from sklearn.linear_model import LogisticRegression

from src.score import ID_COLUMN, chunks, score_chunk, write


def _model():
    frame = pd.DataFrame({"a": [0, 1, 0, 1], "b": [1, 0, 1, 0]})
    return LogisticRegression().fit(frame, [0, 1, 0, 1])


def test_every_row_is_scored_with_its_model_version(tmp_path):
    source = tmp_path / "input.csv"
    pd.DataFrame({ID_COLUMN: range(25), "a": [i % 2 for i in range(25)], "b": [1 - i % 2 for i in range(25)]}).to_csv(
        source, index=False
    )
    model = _model()
    rows = write((score_chunk(model, c, version="3") for c in chunks(source, size=10)), tmp_path / "out", "jsonl")
    assert rows == 25
    first = json.loads((tmp_path / "out").read_text().splitlines()[0])
    assert first["model_version"] == "3" and first[ID_COLUMN] == 0


def test_csv_output_has_one_header(tmp_path):
    frame = pd.DataFrame({ID_COLUMN: [1, 2, 3], "a": [0, 1, 0], "b": [1, 0, 1]})
    write(iter([score_chunk(_model(), frame, version="1")] * 2), tmp_path / "out.csv", "csv")
    assert (tmp_path / "out.csv").read_text().count(ID_COLUMN) == 1
