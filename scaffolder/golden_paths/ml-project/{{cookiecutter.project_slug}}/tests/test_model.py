from src import data
from src.model import build, evaluate
from src.predict import predict


def test_model_learns_the_training_data():
    x_train, x_test, y_train, y_test = data.split(data.load_frame())
    model = build().fit(x_train, y_train)
    metrics = evaluate(model, x_test, y_test)
{%- if cookiecutter.task == "classification" %}
    assert metrics["accuracy"] > 0.9
{%- else %}
    assert metrics["r2"] > 0.3
{%- endif %}


def test_predict_returns_one_value_per_row():
    x_train, x_test, y_train, _ = data.split(data.load_frame())
    model = build().fit(x_train, y_train)
    assert len(predict(model, x_test.head(5))) == 5


def test_lineage_environment_digest_is_a_sha256():
    from src.train import environment_digest

    assert environment_digest().startswith("sha256:")


def test_feature_versions_come_from_the_descriptor():
    import re

    from src.train import feature_versions

    versions = feature_versions()
    assert list(versions) == ["{{ cookiecutter.project_slug|replace('-', '_') }}_inputs"]
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in versions.values())
