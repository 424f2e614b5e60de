"""Registering templates from git (admins only), reading their form as JSON Schema, pinning a new commit."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from jsonschema import Draft202012Validator

from portal.models import AuditEvent
from scaffolder.models import Template
from scaffolder.services.templates import template_checkout, template_register, template_update
from tests.scaffolder.conftest import git

pytestmark = pytest.mark.django_db


def test_admin_registers_a_template_via_the_api_pinned_to_its_commit(api_client, demo_users, make_token, template_repo):
    repo = template_repo("ml-project")
    head = git("-C", str(repo), "rev-parse", "HEAD").stdout.strip()
    token = make_token(demo_users["admin"], "admin")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answer = api_client.post(
        "/api/v1/scaffolder/templates/",
        {"url": f"file://{repo}", "ref": "main", "subdirectory": "", "title": "ML project"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["id"] and body["commit"] == head and body["title"] == "ML project"
    assert "scikit-learn" in body["tags"] and body["description"].startswith("An ML project")
    detail = api_client.get(f"/api/v1/scaffolder/templates/{body['id']}/").json()
    assert {"id", "title", "commit", "parameters"} <= set(detail)
    schema = detail["parameters"]
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["project_slug"]["default"] == "churn-model"
    assert schema["properties"]["task"]["enum"] == ["classification", "regression"]
    assert schema["properties"]["mlplatform_team"]["readOnly"] is True
    assert AuditEvent.objects.filter(action="scaffolder_template.create").count() == 1


def test_only_platform_admins_register_templates(api_client, demo_users, make_token, template_repo):
    repo = template_repo("features")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'write')}")
    answer = api_client.post("/api/v1/scaffolder/templates/", {"url": str(repo), "title": "x"}, format="json")
    assert answer.status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['admin'], 'write')}")
    answer = api_client.post("/api/v1/scaffolder/templates/", {"url": str(repo), "title": "x"}, format="json")
    assert answer.status_code == 403 and "admin" in answer.json()["message"]
    with pytest.raises(PermissionDenied):
        template_register(actor=demo_users["eli"], url=str(repo), title="x")
    assert not Template.objects.exists()


@pytest.mark.parametrize(
    "url,field,message",
    [
        ("https://169.254.169.254/latest/meta-data/", "url", "metadata service"),
        ("http://example.com/repo.git", "url", "not accepted"),
        ("https://user:pw@example.com/repo.git", "url", "credentials"),
    ],
)
def test_refused_template_urls_say_why(api_client, demo_users, make_token, url, field, message):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['admin'], 'admin')}")
    answer = api_client.post("/api/v1/scaffolder/templates/", {"url": url, "title": "x"}, format="json")
    assert answer.status_code == 400
    assert message in answer.json()["fields"][field][0]


def test_a_directory_that_is_not_a_repository_is_refused(demo_users, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValidationError) as refused:
        template_register(actor=demo_users["admin"], url=str(tmp_path / "plain"), title="x")
    assert "git clone failed" in refused.value.message_dict["url"][0]


def test_cookiecutter_json_that_is_not_json_is_refused(demo_users, template_repo):
    with pytest.raises(ValidationError) as refused:
        template_register(actor=demo_users["admin"], url=str(template_repo("broken-json")), title="x")
    assert "not valid JSON" in refused.value.message_dict["url"][0]
    assert "line 4" in refused.value.message_dict["url"][0]


def test_a_missing_ref_or_subdirectory_is_reported_on_its_field(demo_users, template_repo):
    repo = template_repo("features")
    with pytest.raises(ValidationError) as refused:
        template_register(actor=demo_users["admin"], url=str(repo), title="x", ref="no-such-branch")
    assert "no branch or tag" in refused.value.message_dict["ref"][0]
    with pytest.raises(ValidationError) as refused:
        template_register(actor=demo_users["admin"], url=str(repo), title="x", subdirectory="nowhere")
    assert "no cookiecutter.json in nowhere/" in refused.value.message_dict["subdirectory"][0]
    with pytest.raises(ValidationError) as refused:
        template_register(actor=demo_users["admin"], url=str(repo), title="x", subdirectory="../etc")
    assert "subdirectory" in refused.value.message_dict


def test_a_template_in_a_subdirectory_at_a_tag(demo_users, tmp_path):
    import shutil

    from scaffolder.demo import GOLDEN_PATHS, directory_repo

    source = tmp_path / "source"
    shutil.copytree(GOLDEN_PATHS, source / "templates")
    repo = tmp_path / "mono"
    directory_repo(source, repo)
    git("-C", str(repo), "tag", "v1")
    template = template_register(
        actor=demo_users["admin"], url=str(repo), title="batch", ref="v1", subdirectory="templates/batch-scoring"
    )
    assert template.name_variable == "project_slug"
    assert any(f.endswith("src/score.py") for f in template.files)
    assert (template_checkout(template) / "cookiecutter.json").exists()


def test_updating_a_template_is_explicit_and_records_the_new_commit(demo_users, template_repo):
    repo = template_repo("features")
    template = template_register(actor=demo_users["admin"], url=str(repo), title="features")
    first = template.commit
    assert template_update(actor=demo_users["admin"], template=template) == (template, False)
    (repo / "NEWS.md").write_text("new\n")
    git("-C", str(repo), "add", "NEWS.md")
    git("-C", str(repo), "commit", "-qm", "news")
    # Nothing changes until someone asks.
    template.refresh_from_db()
    assert template.commit == first
    template, changed = template_update(actor=demo_users["admin"], template=template)
    assert changed and template.commit != first
    event = AuditEvent.objects.get(action="scaffolder_template.update")
    assert event.before_json["commit"] == first and event.after_json["commit"] == template.commit
    with pytest.raises(PermissionDenied):
        template_update(actor=demo_users["dana"], template=template)


def test_the_registered_commit_is_what_renders_use(demo_users, template_repo, settings):
    import shutil

    repo = template_repo("features")
    template = template_register(actor=demo_users["admin"], url=str(repo), title="features")
    shutil.rmtree(settings.SCAFFOLDER_WORK_DIR / "templates")  # cache gone: fetched again at the pinned commit
    (repo / "cookiecutter.json").write_text('{"project_slug": "changed"}')
    git("-C", str(repo), "commit", "-qam", "change")
    checkout = template_checkout(template)
    assert '"Feature Test"' in (checkout / "cookiecutter.json").read_text()
