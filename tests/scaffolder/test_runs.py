"""A run end to end against real parts: the portal's git server (http-backend under the live server), real
git clone/push, the catalog, a real MLflow server. Jobs run eagerly in these tests."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from django.test import Client

from catalog.models import Feature, Model, Project
from portal.models import AuditEvent, Job, Team
from scaffolder.models import Run, RunStatus
from scaffolder.services import git_provider
from tests.conftest import free_port
from tests.scaffolder.conftest import git

pytestmark = [pytest.mark.integration]


@pytest.fixture
def ml_template(register, git_server):
    return register("ml-project", title="ML project")


@pytest.fixture
def dana_api(api_client, demo_users, make_token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'write')}")
    return api_client


@pytest.fixture
def mlflow(settings, mlflow_server):
    settings.MLFLOW_TRACKING_URI = mlflow_server
    return mlflow_server


@pytest.fixture
def mlflow_down(settings):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"


def start(client, template, **parameters):
    body = {"template": template.pk, "team": "fraud", "parameters": parameters}
    return client.post("/api/v1/scaffolder/runs/", body, format="json")


def repo_dir(name: str, team: str = "fraud"):
    return settings.GIT_REPOS_DIR / team / f"{name}.git"


def test_a_run_creates_the_repository_the_catalog_project_and_the_experiment(
    dana_api, ml_template, mlflow, demo_users, make_token, tmp_path
):
    answer = start(dana_api, ml_template, project_name="Churn Radar", task="classification")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert {"id", "status", "job_url"} <= set(body)
    assert body["job_url"].endswith(f"/jobs/{Run.objects.get().job_id}/")
    run = dana_api.get(f"/api/v1/scaffolder/runs/{body['id']}/").json()
    assert run["status"] == "succeeded", run["error"]
    assert run["project"] == "churn-radar"
    assert run["repo_url"] == f"{settings.GIT_SERVER_URL}/fraud/churn-radar.git"
    job = Job.objects.get(pk=Run.objects.get().job_id)
    assert [s["name"] for s in job.steps] == [
        "Render the template",
        "Create the git repository",
        "Initial commit",
        "Push",
        "Register in the catalog",
        "Create the MLflow experiment",
        "Done",
    ]
    assert all(s["status"] == "succeeded" and s["duration_seconds"] is not None for s in job.steps)
    # The catalog has the project (with the real repository) and the model its descriptor declares.
    project = Project.objects.get(name="churn-radar")
    assert project.team.slug == "fraud" and project.repo_url == run["repo_url"] and project.source == "portal"
    assert Model.objects.get(name="churn-radar").project == project
    assert Feature.objects.get(name="churn_radar_inputs").team.slug == "fraud"
    # The adoption record: scaffolded, from which template commit.
    record = Run.objects.get(project=project)
    assert record.template_commit == ml_template.commit
    # The catalog page says where the project came from.
    browser = Client()
    browser.force_login(demo_users["dana"])
    page = browser.get(project.get_absolute_url()).content.decode()
    assert 'data-testid="scaffolded-from"' in page and ml_template.commit[:12] in page
    # MLflow has the experiment, tagged with the team and project.
    found = requests.get(
        f"{mlflow}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "churn-radar"}, timeout=10
    ).json()["experiment"]
    tags = {t["key"]: t["value"] for t in found["tags"]}
    assert tags["mlplatform.team"] == "fraud" and tags["mlplatform.project"] == "churn-radar"
    assert record.experiment_id == found["experiment_id"]
    # A user clones it over HTTP with a token, like any git server.
    token = make_token(demo_users["dana"], "read")
    clone = tmp_path / "clone"
    url = run["repo_url"].replace("http://", f"http://dana:{token}@")
    git("clone", "--quiet", url, str(clone))
    assert (clone / "mlplatform.yaml").read_text().count("owner: fraud") == 3
    assert "churn-radar" in (clone / "Makefile").read_text()
    log = git("-C", str(clone), "log", "--format=%an|%s").stdout.strip()
    assert log == "Dana|Create churn-radar from ML project"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"scaffolder_run.create", "scaffolder_run.register", "scaffolder_run.succeed", "git.push"} <= actions


def test_a_taken_name_is_409_before_anything_is_created(dana_api, ml_template, demo_users):
    from catalog.services.entities import entity_save

    entity_save(actor=None, kind="project", name="fraud-detection", team=Team.objects.get(slug="credit"))
    answer = start(dana_api, ml_template, project_name="Fraud Detection")
    assert answer.status_code == 409
    assert answer.json() == {
        "message": "A project named fraud-detection already exists in the catalog (team credit). Choose another name.",
        "code": "conflict",
    }
    assert not Run.objects.exists() and not Job.objects.filter(kind="scaffolder.run").exists()
    assert not repo_dir("fraud-detection").exists()


def test_a_double_submit_creates_one_project(dana_api, ml_template, mlflow_down):
    first = start(dana_api, ml_template, project_name="Twice")
    second = start(dana_api, ml_template, project_name="Twice")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert Run.objects.count() == 1 and Project.objects.filter(name="twice").count() == 1
    other = start(dana_api, ml_template, project_name="Twice", description="different")
    assert other.status_code == 409 and "twice already exists" in other.json()["message"]


def test_a_jinja_expression_in_a_parameter_is_refused(dana_api, ml_template):
    answer = start(dana_api, ml_template, project_name="{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    assert answer.status_code == 400
    body = answer.json()
    assert "Values are data, not templates" in body["fields"]["parameters.project_name"][0]
    assert body["message"].startswith("parameters.project_name: Values are data")
    assert not Run.objects.exists()


def test_a_parameter_failing_validation_is_a_field_error(dana_api, ml_template):
    answer = start(dana_api, ml_template, project_name="ok name", task="clustering", include_notebooks="maybe")
    fields = answer.json()["fields"]
    assert answer.status_code == 400
    assert "must be one of: classification, regression" in fields["parameters.task"][0]
    assert "true or false" in fields["parameters.include_notebooks"][0]
    assert not Run.objects.exists()


def test_only_members_create_projects_for_a_team(api_client, ml_template, demo_users, make_token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['eli'], 'write')}")
    answer = start(api_client, ml_template, project_name="Not Mine")
    assert answer.status_code == 403 and "teams you belong to" in answer.json()["message"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'read')}")
    assert start(api_client, ml_template, project_name="Read Only").status_code == 403


def test_git_server_down_fails_cleanly_and_a_retry_finishes_from_the_failed_step(
    dana_api, ml_template, mlflow, settings, live_server
):
    settings.GIT_SERVER_URL = f"http://127.0.0.1:{free_port()}/git"
    body = start(dana_api, ml_template, project_name="Offline").json()
    run = dana_api.get(f"/api/v1/scaffolder/runs/{body['id']}/").json()
    assert run["status"] == "failed" and run["step"] == "repo"
    assert "does not answer: connection refused" in run["error"]
    assert not repo_dir("offline").exists() and not Project.objects.filter(name="offline").exists()
    settings.GIT_SERVER_URL = f"{live_server.url}/git"
    retried = dana_api.post(f"/api/v1/scaffolder/runs/{body['id']}/retry/")
    assert retried.status_code == 202
    run = dana_api.get(f"/api/v1/scaffolder/runs/{body['id']}/").json()
    assert run["status"] == "succeeded", run["error"]
    job = Job.objects.get(pk=Run.objects.get().job_id)
    render_step = job.log_lines.filter(step="Render the template").values_list("message", flat=True)
    assert list(render_step) == ["Done in an earlier attempt; skipped."]
    assert Project.objects.get(name="offline").repo_url == run["repo_url"]


def test_a_failed_push_removes_the_repository_it_created(dana_api, ml_template, mlflow_down, monkeypatch):
    monkeypatch.setattr(git_provider, "push_credential", lambda **kwargs: "forged")
    run = dana_api.get(
        f"/api/v1/scaffolder/runs/{start(dana_api, ml_template, project_name='Lost Push').json()['id']}/"
    ).json()
    assert run["status"] == "failed" and run["step"] == "repo"
    assert "Pushing to" in run["error"] and "partly created repository was removed" in run["error"]
    assert not repo_dir("lost-push").exists()
    assert not Project.objects.filter(name="lost-push").exists()


def test_mlflow_down_leaves_a_registered_project_and_a_retry_creates_the_experiment(
    dana_api, ml_template, settings, mlflow_server
):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    body = start(dana_api, ml_template, project_name="No Tracking").json()
    run = dana_api.get(f"/api/v1/scaffolder/runs/{body['id']}/").json()
    assert run["status"] == "failed" and run["step"] == "experiment"
    assert "does not answer" in run["error"]
    # Nothing half-registered: the catalog entry points to a repository that holds the commit.
    assert Project.objects.get(name="no-tracking").repo_url == run["repo_url"]
    assert (repo_dir("no-tracking") / "refs" / "heads" / "main").exists()
    settings.MLFLOW_TRACKING_URI = mlflow_server
    dana_api.post(f"/api/v1/scaffolder/runs/{body['id']}/retry/")
    assert Run.objects.get().status == RunStatus.SUCCEEDED


def test_a_discarded_run_removes_what_it_made_and_frees_the_name(dana_api, ml_template, mlflow_down):
    body = start(dana_api, ml_template, project_name="Given Up").json()
    assert Project.objects.filter(name="given-up").exists() and repo_dir("given-up").exists()
    answer = dana_api.post(f"/api/v1/scaffolder/runs/{body['id']}/discard/")
    assert answer.status_code == 200 and answer.json()["status"] == "discarded"
    assert not Project.objects.filter(name="given-up").exists() and not repo_dir("given-up").exists()
    again = start(dana_api, ml_template, project_name="Given Up")
    assert again.status_code == 202 and again.json()["id"] != body["id"]
    assert dana_api.post(f"/api/v1/scaffolder/runs/{body['id']}/retry/").status_code == 409


def test_a_failing_hook_fails_the_render_and_creates_nothing(dana_api, register, git_server):
    template = register("hostile")
    body = start(dana_api, template, attack="exit").json()
    run = Run.objects.get(pk=body["id"])
    assert run.status == RunStatus.FAILED
    assert "exit status: 7" in run.error
    assert run.progress == {} and not repo_dir("hostile").exists() and not Project.objects.exists()
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "failed" and job.steps[0]["status"] == "failed"


def test_a_template_without_a_descriptor_still_gets_a_catalog_entry(dana_api, register, git_server, mlflow_down):
    template = register("features")
    body = start(dana_api, template, project_name="Plain Template").json()
    run = Run.objects.get(pk=body["id"])
    assert run.progress.get("register"), run.error
    assert Project.objects.get(name="plain-template").repo_url == run.repo_url


def test_runs_are_listed_for_the_team_and_filterable_by_project(dana_api, ml_template, mlflow_down, api_client):
    start(dana_api, ml_template, project_name="Listed")
    listed = dana_api.get("/api/v1/scaffolder/runs/?project__name=listed").json()
    assert [r["name"] for r in listed["results"]] == ["listed"]
