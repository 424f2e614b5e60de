"""Each golden path renders to a project that passes its own `make test` (the ML project also trains, in the
browser journey: CI trains one generated project, not every template)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scaffolder.demo import GOLDEN_PATHS
from scaffolder.services.rendering import render
from tests.scaffolder.conftest import git


@pytest.mark.parametrize("name", ["batch-scoring"])
def test_a_generated_project_passes_its_own_make_test(tmp_path, name):
    rendered = render(
        template_dir=GOLDEN_PATHS / name, extra_context={"mlplatform_team": "fraud"}, dest=tmp_path / "project"
    )
    assert {"Makefile", "Dockerfile", "mlplatform.yaml", ".github/workflows/ci.yml"} <= set(rendered.files)
    git("init", "--quiet", str(rendered.root))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO", "GIT_", "SCAFFOLDER"))}
    for target in ("help", "test"):
        done = subprocess.run(
            ["make", target, f"PYTHON={sys.executable}"], cwd=rendered.root, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"make {target}:\n{done.stdout}\n{done.stderr}"
    assert "2 passed" in done.stdout


def test_the_ci_workflow_keeps_githubs_expressions(tmp_path):
    rendered = render(
        template_dir=GOLDEN_PATHS / "ml-project", extra_context={"mlplatform_team": "fraud"}, dest=tmp_path / "p"
    )
    workflow = (rendered.root / ".github" / "workflows" / "ci.yml").read_text()
    assert "${{ vars.MLFLOW_TRACKING_URI }}" in workflow  # _copy_without_render
    assert (rendered.root / ".python-version").read_text().strip() == "3.12"
