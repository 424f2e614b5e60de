"""cookiecutter.json as form, JSON Schema and validator; previews in Jinja's sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from scaffolder import parameters
from scaffolder.demo import GOLDEN_PATHS

FEATURES = Path(__file__).resolve().parent / "templates" / "features" / "cookiecutter.json"


@pytest.fixture
def config():
    return parameters.load_config(FEATURES.read_text())


def test_variables_keep_cookiecutter_order_and_kinds(config):
    kinds = {v.name: v.kind for v in parameters.variables(config)}
    assert list(kinds)[:4] == ["project_name", "project_slug", "flavour", "use_docker"]
    assert kinds["flavour"] == "choice"
    assert kinds["use_docker"] == "boolean"
    assert kinds["settings"] == "dict"
    assert kinds["_private"] == "private"
    assert kinds["__computed"] == "computed"
    assert [v.name for v in parameters.variables(config) if v.derived] == ["project_slug", "settings", "shouted"]


def test_prompts_give_labels_and_choice_labels(config):
    flavour = next(v for v in parameters.variables(config) if v.name == "flavour")
    assert flavour.label == "Flavour"
    assert dict(parameters.choice_options(config, flavour, {"project_slug": "x"}))["vanilla"] == "Plain vanilla"


def test_preview_renders_jinja_defaults_in_order(config):
    previewed = parameters.preview(config, {"project_name": "Fraud Radar"})
    assert previewed.context["project_slug"] == "fraud-radar"
    assert previewed.context["__computed"] == "FRAUD-RADAR"
    assert previewed.context["settings"]["owner"] == "fraud-radar-team"
    assert previewed.context["_private"] == "{{ kept as written }}"  # private variables are not rendered


def test_a_template_local_extension_is_never_imported_by_the_preview(config):
    previewed = parameters.preview(config)
    assert "shouted" in previewed.unavailable  # computed only in the isolated render
    assert "shout" in previewed.unavailable["shouted"]


def test_preview_runs_in_the_jinja_sandbox():
    config = {"project_slug": "x", "evil": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}
    previewed = parameters.preview(config)
    assert "evil" in previewed.unavailable
    assert "unsafe" in previewed.unavailable["evil"] or "access" in previewed.unavailable["evil"]


def test_schema_describes_every_visible_variable(config):
    schema = parameters.parameters_schema(config, "project_slug")
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert "_private" not in props
    assert props["__computed"]["readOnly"] is True
    assert props["flavour"]["enum"] == ["vanilla", "chocolate", "{{ cookiecutter.project_slug }}-special"]
    assert props["use_docker"] == {"title": "Use docker", "type": "boolean", "default": True}
    assert props["settings"]["type"] == "object"
    assert props["project_slug"]["default"] == "feature-test"
    assert props["project_slug"]["pattern"] == parameters.NAME_RE.pattern
    assert props["shouted"]["x-default-unavailable"]
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"project_name": "ok", "flavour": "vanilla"}))
    assert list(validator.iter_errors({"project_name": "{{ 7*7 }}"}))  # the schema itself refuses Jinja
    assert list(validator.iter_errors({"unknown": 1}))


def test_jinja_in_a_value_is_refused_with_a_field_error(config):
    attack = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    for value in (attack, "{% for x in y %}", "{# comment #}"):
        cleaned = parameters.clean_parameters(config, {"project_name": value}, "project_slug")
        assert "project_name" in cleaned.errors
        assert "Values are data, not templates" in cleaned.errors["project_name"][0]
    nested = parameters.clean_parameters(config, {"settings": {"region": "{{ x }}"}}, "project_slug")
    assert "settings" in nested.errors


def test_markers_follow_the_templates_jinja_syntax():
    config = {
        "project_slug": "x",
        "name": "a",
        "_jinja2_env_vars": {"variable_start_string": "<<", "line_statement_prefix": "%%"},
    }
    assert parameters.jinja_markers(config) == ("<<", "{%", "{#", "%%")
    assert parameters.clean_parameters(config, {"name": "<< evil >>"}, "project_slug").errors
    assert parameters.clean_parameters(config, {"name": "%% for"}, "project_slug").errors


def test_every_kind_of_bad_value_is_reported(config):
    cleaned = parameters.clean_parameters(
        config,
        {
            "flavour": "strawberry",
            "use_docker": "perhaps",
            "settings": "not an object",
            "__computed": "mine",
            "_private": "mine",
            "nope": 1,
            "project_name": "x" * 2000,
        },
        "project_slug",
    )
    assert set(cleaned.errors) == {
        "flavour",
        "use_docker",
        "settings",
        "__computed",
        "_private",
        "nope",
        "project_name",
    }
    assert "must be one of" in cleaned.errors["flavour"][0]


def test_the_name_must_be_usable_for_a_repository(config):
    cleaned = parameters.clean_parameters(config, {"project_name": "Fraud Radar!"}, "project_slug")
    assert "cannot name a repository" in cleaned.errors["project_slug"][0]
    ok = parameters.clean_parameters(config, {"project_name": "Fraud Radar", "use_docker": "no"}, "project_slug")
    assert not ok.errors and ok.name == "fraud-radar" and ok.values["use_docker"] is False


def test_choices_accept_the_label_or_the_value(config):
    cleaned = parameters.clean_parameters(config, {"flavour": "Plain vanilla"}, "project_slug")
    assert cleaned.values["flavour"] == "vanilla"


def test_portal_variables_are_filled_in_and_not_editable():
    config = parameters.load_config((GOLDEN_PATHS / "ml-project" / "cookiecutter.json").read_text())
    refused = parameters.clean_parameters(config, {"mlplatform_team": "credit"}, "project_slug")
    assert "set by the portal" in refused.errors["mlplatform_team"][0]
    cleaned = parameters.clean_parameters(config, {}, "project_slug", portal={"mlplatform_team": "fraud", "x": "y"})
    assert cleaned.values == {"mlplatform_team": "fraud"}


@pytest.mark.parametrize(
    "text,reason",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": 1, "a": 2}', "more than once"),
        ('{"templates": {}}', "Nested templates"),
        ('{"x": []}', "no choices"),
    ],
)
def test_unusable_cookiecutter_json_is_refused_with_the_reason(text, reason):
    with pytest.raises(parameters.TemplateInvalid, match=reason):
        parameters.load_config(text)


def test_the_name_variable_is_detected():
    assert parameters.detect_name_variable({"project_name": "a", "project_slug": "b"}) == "project_slug"
    assert parameters.detect_name_variable({"repo_name": "b"}) == "repo_name"
    with pytest.raises(parameters.TemplateInvalid):
        parameters.detect_name_variable({"title": "x"})
