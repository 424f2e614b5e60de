import subprocess
import sys
from pathlib import Path

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


def _gunicorn(*args, **env):
    binary = str(Path(sys.executable).parent / "gunicorn")  # installed beside the interpreter running the tests
    return [binary, "portal.wsgi", "-c", str(ROOT / "gunicorn.conf.py"), *args], {**BASE_ENV, **env}


def test_web_server_settings_default_to_one_synchronous_process_more_than_the_cores():
    import os
    import runpy

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["worker_class"] == "sync"
    assert conf["workers"] == (os.cpu_count() or 1) + 1
    args, env = _gunicorn("--check-config", WEB_CONCURRENCY="3")
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout


def test_web_server_answers_with_the_portal_settings(tmp_path):
    import http.client
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args, env = _gunicorn(PORTAL_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", PORTAL_VAR_DIR=str(tmp_path))
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/v1/me/", headers={"Host": "127.0.0.1"})
                response = conn.getresponse()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert response.status == 401  # the API itself answered: no credentials
        assert response.getheader("X-Request-ID")
    finally:
        server.terminate()
        server.wait(timeout=30)
