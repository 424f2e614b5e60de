"""Dana starts a project on the golden path in a real Chromium, then trains its first model version.

Real parts throughout: a Celery worker runs the job (so the log is live), the portal's git server takes
the push, MLflow gets the experiment, and the generated project's own `make test` and `make train` run.
This is the one generated project CI builds and trains."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.scaffolder.conftest import git

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def golden_paths(request, live_server, mlflow_server, settings, tmp_path, monkeypatch, demo_users):
    """The golden paths registered, and a real worker that pushes to the live server's git endpoints."""
    from portal.context import audit_context
    from scaffolder.demo import seed_golden_paths

    values = {
        "GIT_SERVER_URL": f"{live_server.url}/git",
        "GIT_REPOS_DIR": str(tmp_path / "git"),
        "SCAFFOLDER_WORK_DIR": str(tmp_path / "work"),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "SITE_URL": live_server.url,
    }
    for key, value in values.items():
        setattr(settings, key, value if not key.endswith("_DIR") else tmp_path / value.rsplit("/", 1)[1])
        monkeypatch.setenv(key, value)  # the worker process reads its settings from the environment
    settings.CATALOG_ALLOW_FILE_LOCATIONS = True
    with audit_context(user=demo_users["admin"]):
        templates = [t for t, _ in seed_golden_paths(admin=demo_users["admin"], repos_dir=tmp_path / "templates")]
    request.getfixturevalue("celery_worker")
    return {t.title: t for t in templates}


def test_dana_creates_a_project_and_trains_its_first_model_version(
    page, live_server, golden_paths, sign_in, shot, demo_users, make_token, mlflow_server, tmp_path
):
    started = time.monotonic()
    sign_in("dana")
    expect(page.get_by_test_id("home-scaffolder")).to_contain_text("ML project")
    shot("scaffolder-home")
    page.get_by_role("link", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name="Create a project")).to_be_visible()
    card = page.locator("article.template-card", has_text="ML project")
    card.get_by_text("Files it creates").click()
    expect(card.get_by_test_id("file-preview")).to_contain_text("train.py")
    shot("scaffolder-gallery")
    card.get_by_role("button", name="Use this template").click()

    # The slug follows the name as she types.
    name = page.get_by_label("Project name")
    name.fill("")
    name.press_sequentially("Card Churn", delay=30)
    slug = page.get_by_label("Repository and catalog name")
    expect(slug).to_have_value("card-churn")
    expect(page.get_by_test_id("name-status")).to_contain_text("card-churn is free")
    shot("scaffolder-form")

    # A dry run shows the files before anything is created.
    page.get_by_test_id("dry-run").click()
    result = page.get_by_test_id("dry-run-result")
    expect(result).to_contain_text("Dry run: card-churn")
    result.get_by_text("src/train.py", exact=True).click()
    expect(result).to_contain_text("MODEL_NAME = PROJECT")
    shot("scaffolder-dry-run")

    # Submit and watch the live log.
    page.get_by_test_id("create").click()
    expect(page).to_have_url(re.compile(r"/create/runs/\d+/$"))
    expect(page.get_by_test_id("job-log")).to_contain_text("Rendering ML project", timeout=30_000)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator('[data-step="push"]')).to_contain_text("succeeded")
    expect(page.get_by_test_id("job-log")).to_contain_text("Next: git clone")
    expect(page.get_by_test_id("next-step")).to_contain_text("make train")
    shot("scaffolder-run")
    clone_command = page.locator("#clone-command").input_value()
    assert clone_command == f"git clone {live_server.url}/git/fraud/card-churn.git"

    # Her clone passes its own tests and trains a first version into MLflow.
    token = make_token(demo_users["dana"], "read")
    project = tmp_path / "card-churn"
    git("clone", "--quiet", clone_command.split()[-1].replace("http://", f"http://dana:{token}@"), str(project))
    # A clean environment, as on a laptop: the portal's own settings and pytest state stay out.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO", "GIT_", "SCAFFOLDER"))}
    env |= {"MLFLOW_TRACKING_URI": mlflow_server, "PYTHON": sys.executable}
    for target in ("help", "test", "train"):
        done = subprocess.run(["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"make {target}:\n{done.stdout}\n{done.stderr}"
    assert "registered card-churn version 1" in done.stdout
    call_command("sync_mlflow")

    page.get_by_test_id("catalog-link").click()
    expect(page).to_have_url(re.compile(r"/catalog/projects/card-churn/$"))
    shot("scaffolder-catalog-project")
    page.goto(f"{live_server.url}/catalog/models/card-churn/versions/")
    expect(page.locator("table").get_by_role("link", name="v1")).to_be_visible()
    page.locator("table").get_by_role("link", name="v1").click()
    expect(page.get_by_test_id("lineage-graph")).to_be_visible()
    expect(page.get_by_text("Lineage completeness: 6 of 6")).to_be_visible()  # the golden path's promise
    shot("scaffolder-first-model-version")
    print(f"\nlogin → first model version in the catalog: {time.monotonic() - started:.1f} s (automated)")
