"""Scaffolder fixtures: templates as real git repositories, a private git root and work directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scaffolder.demo import GOLDEN_PATHS, directory_repo

TEMPLATES = Path(__file__).resolve().parent / "templates"


@pytest.fixture(autouse=True)
def scaffolder_dirs(settings, tmp_path):
    """Each test gets its own bare-repository root and work directory."""
    settings.GIT_REPOS_DIR = tmp_path / "git"
    settings.SCAFFOLDER_WORK_DIR = tmp_path / "work"
    settings.CATALOG_ALLOW_FILE_LOCATIONS = True
    return settings


@pytest.fixture
def template_repo(tmp_path):
    """``template_repo("features")`` → a git repository (path) holding tests/scaffolder/templates/features."""

    def make(name: str) -> Path:
        source = GOLDEN_PATHS / name if (GOLDEN_PATHS / name).exists() else TEMPLATES / name
        repo = tmp_path / "template-repos" / name
        directory_repo(source, repo, f"{name} template")
        return repo

    return make


@pytest.fixture
def register(demo_users, template_repo):
    """``register("ml-project")`` → a Template registered by the admin from a fresh git repository."""
    from scaffolder.services.templates import template_register

    def make(name: str, **kwargs):
        return template_register(
            actor=demo_users["admin"], url=str(template_repo(name)), title=kwargs.pop("title", name), **kwargs
        )

    return make


@pytest.fixture
def git_server(live_server, settings):
    """The portal's own git server (git http-backend behind the live server)."""
    settings.GIT_SERVER_URL = f"{live_server.url}/git"
    return settings.GIT_SERVER_URL


def git(
    *args: str, cwd: Path | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    base |= {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *identity, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=check,
        env=base | (env or {}),
        timeout=60,
    )
