"""Renders run in an isolated process: no network, no portal files or secrets, limits, a timeout."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from scaffolder.demo import GOLDEN_PATHS
from scaffolder.services import rendering
from scaffolder.services.rendering import RenderFailed, render

TEMPLATES = Path(__file__).resolve().parent / "templates"
HOSTILE = TEMPLATES / "hostile"


def attack(tmp_path, name: str, target: str = "", **kwargs):
    return render(
        template_dir=HOSTILE, extra_context={"attack": name, "target": target}, dest=tmp_path / "out", **kwargs
    )


def test_this_machine_isolates_renders():
    found = rendering.isolation()
    assert found.isolated, found.detail
    if os.geteuid() == 0:
        assert found.mode == "namespaces" and str(settings.SCAFFOLDER_SANDBOX_UID) in found.detail


def test_a_harmless_template_renders(tmp_path):
    rendered = attack(tmp_path, "none")
    assert rendered.files == ["README.md"]
    assert (tmp_path / "out" / "README.md").read_text() == "hello hostile\n"
    assert rendered.context["attack"] == "none"


def test_a_hook_cannot_open_a_socket(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(RenderFailed) as failed:
            attack(tmp_path, "socket", f"127.0.0.1:{server.getsockname()[1]}")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    finally:
        server.close()
    assert failed.value.kind == "hook"
    assert "Network is unreachable" in failed.value.output
    assert not (tmp_path / "out").exists()


def test_a_hook_sees_no_portal_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_CANARY", "s3cret")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    rendered = attack(tmp_path, "environment")
    assert "LEAKED" not in rendered.output
    names = rendered.output.split("ENV ", 1)[1].split()
    assert "PORTAL_CANARY" not in names and "SECRET_KEY" not in names and "DATABASE_URL" not in names


def _portal_files() -> list[str]:
    files = [str(settings.BASE_DIR / "manage.py"), str(settings.BASE_DIR / "portal" / "settings" / "__init__.py")]
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        files.append(str(Path(settings.VAR_DIR) / "portal.sqlite3"))
    return files


@pytest.mark.parametrize("target", _portal_files())
def test_a_hook_cannot_read_the_portals_files(tmp_path, target):
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "read", target)
    assert failed.value.kind == "hook"
    assert "No such file" in failed.value.output or "Permission denied" in failed.value.output


def test_a_hook_cannot_read_the_database_or_the_signing_key(tmp_path, db):
    from django.db import connection

    key = Path(settings.AUDIT_SIGNING_KEY_FILE)
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    targets = [str(key)]
    if connection.vendor == "sqlite":
        targets.append(str(connection.settings_dict["NAME"]))
    for target in targets:
        assert Path(target).exists()
        with pytest.raises(RenderFailed) as failed:
            attack(tmp_path, "read", target)
        assert "No such file" in failed.value.output or "Permission denied" in failed.value.output, target


def test_a_hook_cannot_write_outside_its_scratch_space(tmp_path):
    target = Path(settings.GIT_REPOS_DIR) / "planted.txt"
    target.parent.mkdir(parents=True)
    with pytest.raises(RenderFailed):
        attack(tmp_path, "write", str(target))
    assert not target.exists()


def test_a_hook_that_never_ends_is_stopped(tmp_path):
    started = time.monotonic()
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "loop", timeout=3)
    assert failed.value.kind == "timeout"
    assert "longer than 3 s" in failed.value.message
    assert time.monotonic() - started < 10
    assert not list((Path(settings.SCAFFOLDER_WORK_DIR) / "scratch").iterdir())


def test_a_hook_exiting_non_zero_fails_cleanly(tmp_path):
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "exit")
    assert failed.value.kind == "hook"
    assert "exit status: 7" in failed.value.message
    assert "giving up on purpose" in failed.value.output
    assert not (tmp_path / "out").exists()
    assert not list((Path(settings.SCAFFOLDER_WORK_DIR) / "scratch").iterdir())


def test_a_symlink_out_of_the_project_is_refused(tmp_path):
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "symlink")
    assert failed.value.kind == "path"
    assert "passwd is a symbolic link to /etc/passwd" in failed.value.message
    assert not (tmp_path / "out").exists()


def test_files_written_outside_the_project_are_left_behind(tmp_path):
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "escape")
    assert "inside-link is a symbolic link to ../outside" in failed.value.message


def test_a_hook_is_stopped_by_the_cpu_limit(tmp_path, settings):
    settings.SCAFFOLDER_RENDER_CPU_SECONDS = 1
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "loop", timeout=20)
    assert failed.value.kind == "hook"
    assert "more than 1 s of CPU" in failed.value.message


def test_renders_are_refused_without_isolation_unless_allowed(tmp_path, settings):
    settings.SCAFFOLDER_SANDBOX = "none"
    with pytest.raises(RenderFailed) as failed:
        attack(tmp_path, "none")
    assert failed.value.kind == "isolation"
    assert "SCAFFOLDER_ALLOW_UNISOLATED" in failed.value.message
    settings.SCAFFOLDER_ALLOW_UNISOLATED = True
    assert attack(tmp_path, "none").files == ["README.md"]


def test_plain_cookiecutter_features_work_unchanged(tmp_path):
    """Choices, dicts, private and __ variables, Jinja defaults, _copy_without_render, _extensions, both hooks."""
    values = {"project_name": "Feature Test", "flavour": "chocolate", "settings": {"region": "us"}}
    rendered = render(template_dir=TEMPLATES / "features", extra_context=values, dest=tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "values.txt").read_text().splitlines() == [
        "name=Feature Test",
        "slug=feature-test",
        "flavour=chocolate",
        "docker=True",
        "retries=3",
        "region=us",
        "owner=feature-test-team",
        "shouted=FEATURE TEST!",
        "private={{ kept as written }}",
        "computed=FEATURE-TEST",
    ]
    assert (out / "raw" / "untouched.txt").read_text() == "{{ cookiecutter.project_name }} stays as written\n"
    assert (out / "Dockerfile").exists()
    assert (out / "pre_gen.txt").read_text() == "pre feature-test\n"
    assert "Dockerfile" in (out / "post_gen.txt").read_text()
    assert rendered.context["__computed"] == "FEATURE-TEST"
    # The same template through the plain cookiecutter command gives the same files.
    plain = tmp_path / "plain"
    subprocess.run(
        [
            str(Path(os.sys.executable).parent / "cookiecutter"),
            "--no-input",
            "--output-dir",
            str(plain),
            str(TEMPLATES / "features"),
            "project_name=Feature Test",
            "flavour=chocolate",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    ours = {p: (out / p).read_bytes() for p in rendered.files if p != "values.txt"}
    theirs = {p: (plain / "feature-test" / p).read_bytes() for p in ours}
    assert ours == theirs


def test_a_boolean_false_drops_a_conditional_file(tmp_path):
    rendered = render(template_dir=TEMPLATES / "features", extra_context={"use_docker": False}, dest=tmp_path / "out")
    assert "Dockerfile" not in rendered.files


def test_the_golden_paths_render_in_well_under_a_second_each(tmp_path):
    for name in ("ml-project", "batch-scoring"):
        rendered = render(
            template_dir=GOLDEN_PATHS / name, extra_context={"mlplatform_team": "fraud"}, dest=tmp_path / name
        )
        assert "mlplatform.yaml" in rendered.files and "Makefile" in rendered.files
        assert rendered.seconds < 5
