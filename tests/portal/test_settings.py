import subprocess
import sys

from tests.conftest import ROOT

BASE_ENV = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "portal.settings"}


def manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_mode_refuses_to_start_without_a_real_secret():
    result = manage("check", PORTAL_MODE="production", ALLOWED_HOSTS="portal.example.com")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_mode_passes_check_deploy(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz!@#$%^&*(")
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PORTAL_MODE="production",
        SECRET_KEY_FILE=str(secret_file),
        ALLOWED_HOSTS="portal.example.com",
        PORTAL_VAR_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_bad_typed_setting_fails_loudly():
    result = manage("check", JOB_HEARTBEAT_SECONDS="soon")
    assert result.returncode != 0 and "JOB_HEARTBEAT_SECONDS='soon' is not an integer" in result.stderr


def test_responses_carry_a_content_security_policy(client, db):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src


def test_production_mode_needs_allowed_hosts(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("k" * 64)
    result = manage("check", PORTAL_MODE="production", SECRET_KEY_FILE=str(secret_file))
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr
