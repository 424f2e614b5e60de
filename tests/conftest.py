"""Shared fixtures: named users (as in the demo), tokens, a real MLflow server, a real Celery worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# refuses to run there unless told it is safe (it is: one thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from portal.celery import app

    app.conf.task_always_eager = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _isolated_state(settings, tmp_path):
    from django.core.cache import cache

    cache.clear()
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "audit-key.pem"
    yield
    cache.clear()


@pytest.fixture
def demo_users(db):
    """The demo's teams and users: admin, dana, eli, rita, raj, finn, olga."""
    from django.contrib.auth import get_user_model

    from portal.demo import seed_demo

    seed_demo(password="demo")
    return {u.username: u for u in get_user_model().objects.all()}


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def make_token(db):
    from portal.services.tokens import token_create

    def make(user, *scopes, team=None, **kwargs):
        return token_create(
            actor=user, name=kwargs.pop("name", "test"), scopes=scopes or ("read",), team=team, **kwargs
        ).secret

    return make


# --- Real services ------------------------------------------------------------


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def mlflow_server():
    """A real MLflow tracking server (SQLite store, local artifacts) on a free port."""
    workdir = Path(tempfile.mkdtemp(prefix="portal-mlflow-"))
    port = free_port()
    log = open(workdir / "mlflow.log", "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--default-artifact-root",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=workdir,
        # Let it deliver model-registry webhooks to the test portal on loopback.
        # Its GenAI job runner (five huey processes) is not used by the portal: off, to save CPU.
        env={
            **os.environ,
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # It caches each event's webhook list for 60 s; tests register webhooks as they go.
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/health", timeout=120, proc=proc)
        yield url
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def worker_env(**extra) -> dict:
    """Environment for a subprocess that must use the test database and the test broker."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=url,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_DEFAULT_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        AUDIT_SIGNING_KEY_FILE=str(settings.AUDIT_SIGNING_KEY_FILE),
        MLFLOW_TRACKING_URI=settings.MLFLOW_TRACKING_URI,
        GOVERNANCE_MANIFEST_REPO=str(settings.GOVERNANCE_MANIFEST_REPO),
        JOB_HEARTBEAT_SECONDS="1",
        PYTHONPATH=str(ROOT),
    )
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        env["CELERY_FILESYSTEM_DIR"] = str(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
    env.update(extra)
    return env


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path):
    """A real Celery worker process on the test database and a private queue."""
    import uuid

    from portal.celery import app

    queue = f"portal-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    log = open(tmp_path / "worker.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "--queues",
            queue,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{queue}@%h",
        ],
        env=worker_env(),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = tmp_path / "worker.log"
    deadline = time.monotonic() + 60
    while "ready" not in (tmp_path / "worker.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Celery worker did not start:\n" + (tmp_path / "worker.log").read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield proc
    finally:
        stop(proc)
        log.close()
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def wait_until(predicate, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")
