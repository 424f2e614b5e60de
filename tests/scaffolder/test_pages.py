"""The scaffolder's pages: gallery, form (live defaults, server-side validation, dry run), run page."""

from __future__ import annotations

import pytest
from django.test import Client

from scaffolder.models import Run, Template
from tests.scaffolder.conftest import git

pytestmark = pytest.mark.django_db


@pytest.fixture
def features(register):
    return register("features", title="Feature test")


@pytest.fixture
def dana(demo_users):
    client = Client()
    client.force_login(demo_users["dana"])
    return client


@pytest.fixture
def admin(demo_users):
    client = Client()
    client.force_login(demo_users["admin"])
    return client


def test_gallery_shows_each_template_with_the_files_it_creates(dana, register):
    template = register("ml-project", title="ML project")
    page = dana.get("/create/").content.decode()
    assert "ML project" in page and "scikit-learn" in page
    assert "churn-model/" in page and "train.py" in page and "mlplatform.yaml" in page
    assert template.commit[:12] in page
    assert "Register a template" not in page  # admins only


def test_the_empty_gallery_says_what_to_do(dana, admin):
    assert "A platform admin registers them" in dana.get("/create/").content.decode()
    assert "seed_scaffolder_demo" in admin.get("/create/").content.decode()


def test_an_admin_registers_a_template_in_the_browser(admin, template_repo):
    repo = template_repo("batch-scoring")
    answer = admin.post("/create/", {"url": f"file://{repo}", "title": "Batch", "tags": "a, b"})
    assert answer.status_code == 302
    template = Template.objects.get()
    assert template.tags == ["a", "b"] and template.title == "Batch"
    refused = admin.post("/create/", {"url": "https://169.254.169.254/x", "title": "Meta"})
    assert refused.status_code == 400 and "metadata service" in refused.content.decode()


def test_a_data_scientist_cannot_register_templates(dana, template_repo):
    assert dana.post("/create/", {"url": str(template_repo("features")), "title": "x"}).status_code == 403


def test_the_form_follows_cookiecutter_json(dana, features):
    page = dana.get(f"/create/{features.pk}/").content.decode()
    assert 'name="v_project_name"' in page and 'value="Feature Test"' in page
    assert 'name="v_project_slug"' in page and 'value="feature-test"' in page
    assert 'name="auto_project_slug"' in page
    assert "<select" in page and "Plain vanilla" in page  # a choice, labelled by __prompts__
    assert 'type="checkbox" name="v_use_docker"' in page
    assert "&quot;owner&quot;: &quot;feature-test-team&quot;" in page  # a dict, as JSON (rendered like cookiecutter)
    assert 'name="auto_settings"' in page  # its Jinja default follows the name until edited
    assert 'name="v___computed"' in page and "disabled" in page  # __ variables are shown, not editable
    assert "_private" not in page and "kept as written" not in page  # _ variables are hidden
    assert "computed when the template is rendered" in page  # the local extension is not run here
    assert '<option value="fraud" selected>' in page  # dana's only team


def form_data(template, **values):
    data = {
        "team": "fraud",
        "v_project_name": "Feature Test",
        "v_project_slug": "feature-test",
        "auto_project_slug": "feature-test",
        "v_flavour": "vanilla",
        "v_use_docker": "on",
        "v_settings": '{"retries": 3}',
        "v_shouted": "",
        "auto_shouted": "",
    }
    return data | values


def test_derived_defaults_follow_the_name_as_you_type(dana, features):
    answer = dana.post(
        f"/create/{features.pk}/preview/",
        form_data(features, v_project_name="Fraud Radar"),
        HTTP_HX_REQUEST="true",
    )
    page = answer.content.decode()
    assert 'id="field-v_project_slug" class="scaffolder-field" hx-swap-oob="true"' in page
    assert 'value="fraud-radar"' in page
    assert "fraud-radar is free" in page


def test_a_slug_typed_by_hand_is_not_overwritten(dana, features):
    answer = dana.post(
        f"/create/{features.pk}/preview/",
        form_data(features, v_project_name="Fraud Radar", v_project_slug="my-own"),
        HTTP_HX_REQUEST="true",
    )
    page = answer.content.decode()
    assert "field-v_project_slug" not in page
    assert "my-own is free" in page


def test_the_preview_says_when_a_name_is_taken_or_unusable(dana, features):
    from catalog.services.entities import entity_save
    from portal.models import Team

    entity_save(actor=None, kind="project", name="fraud-radar", team=Team.objects.get(slug="fraud"))
    page = dana.post(
        f"/create/{features.pk}/preview/", form_data(features, v_project_name="Fraud Radar")
    ).content.decode()
    assert "already exists in the catalog" in page
    page = dana.post(
        f"/create/{features.pk}/preview/", form_data(features, v_project_name="Fraud!", v_project_slug="Fraud!")
    ).content.decode()
    assert "cannot name a repository" in page


def test_the_form_refuses_jinja_and_bad_values_next_to_the_field(dana, features):
    answer = dana.post(
        f"/create/{features.pk}/",
        form_data(features, v_project_name="{{ 7*7 }}", v_project_slug="ok", v_settings="[1]"),
    )
    page = answer.content.decode()
    assert answer.status_code == 400
    assert "Values are data, not templates" in page
    assert "Give a JSON object" in page
    assert not Run.objects.exists()


def test_a_dry_run_shows_files_and_contents_and_creates_nothing(dana, features, settings):
    answer = dana.post(f"/create/{features.pk}/dry-run/", form_data(features, v_project_name="Dry Run"))
    page = answer.content.decode()
    assert answer.status_code == 200, page
    assert "Dry run: dry-run" in page and "nothing was created" in page
    assert "<code>values.txt</code>" in page and "slug=dry-run" in page and "pre_gen.txt" in page
    assert not Run.objects.exists()
    assert not (settings.GIT_REPOS_DIR / "fraud").exists()


def test_a_dry_run_reports_a_failing_hook(dana, register):
    template = register("hostile")
    data = {"team": "fraud", "v_project_slug": "hostile", "v_attack": "exit", "v_target": ""}
    answer = dana.post(f"/create/{template.pk}/dry-run/", data)
    page = answer.content.decode()
    assert answer.status_code == 400 and "exit status: 7" in page and "giving up on purpose" in page


def test_the_api_dry_run_returns_the_files(api_client, demo_users, make_token, features):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'write')}")
    answer = api_client.post(
        f"/api/v1/scaffolder/templates/{features.pk}/dry-run/",
        {"team": "fraud", "parameters": {"project_name": "Api Dry"}},
        format="json",
    )
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["name"] == "api-dry"
    values = next(f for f in body["files"] if f["path"] == "values.txt")
    assert "shouted=API DRY!" in values["content"]


def test_run_page_shows_steps_error_and_actions(dana, features, demo_users):
    run = Run.objects.create(
        template=features,
        template_commit=features.commit,
        team=demo_users["dana"].memberships.get().team,
        created_by=demo_users["dana"],
        name="broken-run",
        status="failed",
        error="The git server at http://x/git/ does not answer: connection refused.",
        progress={"render": {"files": 3}},
    )
    page = dana.get(f"/create/runs/{run.pk}/").content.decode()
    assert "does not answer" in page
    assert "Retry from “Create the git repository”" in page
    assert 'data-step="render"' in page
    assert "Discard" in page
    live = dana.get(f"/create/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-live"' in live and "<html" not in live


def test_outsiders_do_not_see_other_teams_runs(features, demo_users):
    run = Run.objects.create(
        template=features,
        template_commit=features.commit,
        team=demo_users["dana"].memberships.get().team,
        created_by=demo_users["dana"],
        name="private-run",
    )
    eli = Client()
    eli.force_login(demo_users["eli"])
    assert eli.get(f"/create/runs/{run.pk}/").status_code == 404


def test_home_page_offers_the_golden_path(dana, features):
    page = dana.get("/").content.decode()
    assert 'data-testid="home-scaffolder"' in page and "Feature test" in page


def test_gallery_query_count_does_not_grow_with_templates(dana, register, django_assert_max_num_queries):
    for name in ("features", "ml-project", "batch-scoring"):
        register(name)
    with django_assert_max_num_queries(12):
        assert dana.get("/create/").status_code == 200


def test_an_admin_pins_a_newer_commit_from_the_gallery(admin, template_repo, demo_users):
    from scaffolder.services.templates import template_register

    repo = template_repo("features")
    template = template_register(actor=demo_users["admin"], url=str(repo), title="features")
    (repo / "NEW.md").write_text("x")
    git("-C", str(repo), "add", "NEW.md")
    git("-C", str(repo), "commit", "-qm", "x")
    answer = admin.post(f"/create/{template.pk}/refresh/", follow=True)
    template.refresh_from_db()
    assert f"now pinned to {template.commit[:12]}" in answer.content.decode()


def test_submitting_the_form_starts_a_run_with_the_portals_values(dana, register):
    template = register("ml-project")
    data = {
        "team": "fraud",
        "v_project_name": "Form Run",
        "v_project_slug": "churn-model",
        "auto_project_slug": "churn-model",
        "v_description": "From the form.",
        "v_task": "regression",
        "v_python_version": "3.12",
    }
    answer = dana.post(f"/create/{template.pk}/", data)
    run = Run.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/create/runs/{run.pk}/"
    assert run.name == "form-run"  # the slug was left to the template, so it followed the name
    assert run.parameters == {
        "project_name": "Form Run",
        "description": "From the form.",
        "task": "regression",
        "python_version": "3.12",
        "include_notebooks": False,
        "mlplatform_team": "fraud",
        "mlflow_tracking_uri": run.parameters["mlflow_tracking_uri"],
    }
    again = dana.post(f"/create/{template.pk}/", data, follow=True)
    assert "You already submitted this" in again.content.decode() and Run.objects.count() == 1


def test_adoption_counts_projects_started_on_the_golden_path(dana, features, demo_users):
    from catalog.services.entities import entity_save
    from portal.models import Team
    from scaffolder.selectors import adoption

    fraud = Team.objects.get(slug="fraud")
    manual, _ = entity_save(actor=None, kind="project", name="by-hand", team=fraud)
    started, _ = entity_save(actor=None, kind="project", name="golden", team=fraud)
    Run.objects.create(
        template=features,
        template_commit=features.commit,
        team=fraud,
        created_by=demo_users["dana"],
        name="golden",
        status="succeeded",
        project=started,
    )
    figures = adoption()
    assert figures["projects"] == 2 and figures["scaffolded"] == 1 and figures["share"] == 0.5
    assert figures["by_template"] == {f"Feature test@{features.commit[:12]}": 1}
    assert "1 of 2 projects in the catalog started here" in dana.get("/create/").content.decode()


def test_a_run_whose_job_died_is_shown_failed_and_can_be_retried(dana, features, demo_users):
    from portal.models import Job
    from scaffolder.services.runs import run_retry

    fraud = demo_users["dana"].memberships.get().team
    job = Job.objects.create(kind="scaffolder.run", title="x", status="failed", error="The worker stopped responding.")
    run = Run.objects.create(
        template=features,
        template_commit=features.commit,
        team=fraud,
        created_by=demo_users["dana"],
        name="orphan",
        status="running",
        job=job,
    )
    page = dana.get(f"/create/runs/{run.pk}/").content.decode()
    run.refresh_from_db()
    assert run.status == "failed" and "The worker stopped responding." in page
    assert run_retry(actor=demo_users["dana"], run=run).status == "queued"


def test_a_taken_name_is_refused_next_to_the_field_with_409(dana, features):
    from catalog.services.entities import entity_save
    from portal.models import Team

    entity_save(actor=None, kind="project", name="feature-test", team=Team.objects.get(slug="credit"))
    answer = dana.post(f"/create/{features.pk}/", form_data(features))
    assert answer.status_code == 409
    assert "already exists in the catalog (team credit)" in answer.content.decode()
    assert not Run.objects.exists()
