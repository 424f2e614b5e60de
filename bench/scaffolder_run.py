"""scaffolder_run: from submitting the ML project golden path to the project searchable in the catalog.

Real parts: gunicorn serving the portal (its API and its git server), a Celery worker (threads pool, the
embedded filesystem broker) running each run's job with the render isolated, and a real ``mlflow
server``. Each round submits ``POST /api/v1/scaffolder/runs/`` and polls the catalog search API until the
project appears, then the run until it has succeeded.

Peer: the same template done by hand in the same round: ``cookiecutter --no-input`` (not isolated) +
``git init`` / ``add`` / ``commit`` + ``git push`` over HTTP to the same git server, into a repository
created beforehand (untimed). The overhead is the portal's submit → run succeeded minus that.

Once: a newcomer's path after the form, automated: clone the new project, ``make test``, ``make train``
(into the same MLflow), sync, until the model's first version is in the catalog.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.catalog_common import GUNICORN_CMD
from bench.common import (
    PYTHON,
    ROOT,
    BenchError,
    Metric,
    Ratio,
    Result,
    Size,
    background,
    django_env,
    manage,
    redis_answers,
    sqlite_url,
)
from bench.http_load import free_port

NAME = "scaffolder_run"
SIZES = {"smoke": {"rounds": 3, "newcomer": False}, "full": {"rounds": 20, "newcomer": True}}
SEARCHABLE_TARGET_S = 10
OVERHEAD_TARGET_S = 1
BIN = Path(PYTHON).parent
TEMPLATE = ROOT / "scaffolder" / "golden_paths" / "ml-project"
REDIS = "redis://127.0.0.1:6379/14"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def _answers(port: int, path: str = "/") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path, headers={"Host": "127.0.0.1"})
        return conn.getresponse().status < 500
    except OSError:
        return False


class _Api:
    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.token}", "Host": "127.0.0.1", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"null")


def _iso(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _portal_round(api: _Api, template_id: int, name: str) -> dict[str, float]:
    started = time.perf_counter()
    status, run = api.call(
        "POST",
        "/api/v1/scaffolder/runs/",
        {"template": template_id, "team": "fraud", "parameters": {"project_name": name}},
    )
    if status != 202:
        raise BenchError(f"POST /api/v1/scaffolder/runs/ answered {status}: {run}")
    slug, searchable = name.lower().replace(" ", "-"), None
    deadline = started + 120
    while time.perf_counter() < deadline:
        if searchable is None:
            _, found = api.call("GET", f"/api/v1/catalog/search/?q={slug}")
            if any(r.get("name") == slug for r in (found or {}).get("results", [])):
                searchable = time.perf_counter() - started
        _, state = api.call("GET", f"/api/v1/scaffolder/runs/{run['id']}/")
        if state["status"] == "failed":
            raise BenchError(f"run {run['id']} failed: {state['error']}")
        if state["status"] == "succeeded" and searchable is not None:
            done = time.perf_counter() - started
            job_id = state["job_url"].rstrip("/").rsplit("/", 1)[1]
            _, job = api.call("GET", f"/api/v1/jobs/{job_id}/")
            while not job["finished_at"]:  # the run says succeeded a moment before its job records the end
                time.sleep(0.05)
                _, job = api.call("GET", f"/api/v1/jobs/{job_id}/")
            ran = (_iso(job["finished_at"]) - _iso(job["started_at"])).total_seconds()
            return {"searchable": searchable, "succeeded": done, "job": ran}
        time.sleep(0.05)
    raise BenchError(f"run {run['id']} did not finish in 120 s")


def _plain_round(work: Path, name: str, remote: str, env: dict[str, str]) -> float:
    out = work / f"plain-{uuid.uuid4().hex[:6]}"
    git_env = {k: v for k, v in env.items() if not k.startswith("GIT_")} | {"GIT_TERMINAL_PROMPT": "0"}
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    started = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "cookiecutter"),
            "--no-input",
            "-o",
            str(out),
            str(TEMPLATE),
            f"project_name={name}",
            "mlplatform_team=fraud",
        ],
        check=True,
        capture_output=True,
        env=git_env | {"HOME": str(work)},
    )
    project = next(out.iterdir())
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        [*identity, "commit", "-qm", "init"],
        ["push", "-q", remote, "main"],
    ):
        subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True, env=git_env)
    took = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return took


def _newcomer(
    api: _Api, template_id: int, work: Path, env: dict[str, str], token: str, git_url: str, mlflow: str
) -> dict:
    """Submit → clone → make test → make train → sync → first version visible in the catalog API."""
    name = f"Newcomer {uuid.uuid4().hex[:6]}"
    slug = name.lower().replace(" ", "-")
    started = time.perf_counter()
    _portal_round(api, template_id, name)
    clone = work / slug
    url = f"{git_url}/fraud/{slug}.git".replace("http://", f"http://bench:{token}@")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DJANGO", "DATABASE"))}
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, capture_output=True, env=clean)
    for target in ("test", "train"):
        done = subprocess.run(
            ["make", target, f"PYTHON={PYTHON}"],
            cwd=clone,
            capture_output=True,
            text=True,
            env=clean | {"MLFLOW_TRACKING_URI": mlflow},
            timeout=600,
        )
        if done.returncode != 0:
            raise BenchError(
                f"make {target} in the generated project failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    manage("sync_mlflow", env=env)
    _, model = api.call("GET", f"/api/v1/catalog/models/{slug}/")
    if not model or model.get("latest_version") != 1:
        raise BenchError(f"the first version of {slug} is not in the catalog: {model}")
    return {"seconds": time.perf_counter() - started}


def measure(size: Size) -> Result:
    s = SIZES[size]
    result = Result(
        NAME,
        "Scaffolder: submit the ML project golden path → searchable in the catalog; overhead over doing it by hand",
        peer="`cookiecutter --no-input` + `git init/add/commit` + `git push` (same git server) of the same template",
        size=size,
        runs=[
            "fresh SQLite database: `manage.py migrate`, `seed_demo`, `seed_scaffolder_demo`, a `write` token for dana",
            f"`{GUNICORN_CMD}` (API and git server), a Celery worker (threads; Redis when it "
            "answers, else the embedded filesystem broker), `mlflow server` (SQLite), all on 127.0.0.1",
            f"{s['rounds']} rounds, each: submit a run and poll the catalog search API until the project appears, "
            "then the run until it succeeded; then the same template by hand (the peer)",
        ]
        + (
            ["once: clone the new project, `make test`, `make train`, `manage.py sync_mlflow`"] if s["newcomer"] else []
        ),
    )
    with tempfile.TemporaryDirectory(prefix="bench-scaffolder-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        portal_port, mlflow_port = free_port(), free_port()
        mlflow = f"http://127.0.0.1:{mlflow_port}"
        git_url = f"http://127.0.0.1:{portal_port}/git"
        # Production's broker when one answers (CI starts Redis); the embedded one polls every second.
        broker = REDIS if redis_answers() else "filesystem://"
        result.notes.append(f"broker: {'Redis on 127.0.0.1' if broker == REDIS else 'the embedded filesystem broker'}")
        env = django_env(
            sqlite_url(work / "portal.sqlite3"),
            work,
            ALLOWED_HOSTS="127.0.0.1",
            GIT_SERVER_URL=git_url,
            SITE_URL=f"http://127.0.0.1:{portal_port}",
            MLFLOW_TRACKING_URI=mlflow,
            CELERY_BROKER_URL=broker,
            CELERY_FILESYSTEM_DIR=str(work / "broker"),
            CELERY_TASK_DEFAULT_QUEUE=f"bench-{uuid.uuid4().hex[:6]}",
        )
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("seed_demo", "--quiet-logins", env=env)
        manage("seed_scaffolder_demo", env=env)
        token = manage("create_token", "--user", "dana", "--name", "bench", "--scope", "write", env=env).strip()
        mlflow_env = dict(os.environ) | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        stack.enter_context(
            background(
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    f"sqlite:///{work / 'mlflow.db'}",
                    "--default-artifact-root",
                    str(work / "artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                mlflow_env,
                work / "mlflow.log",
                lambda: _answers(mlflow_port, "/health"),
                "mlflow server",
            )
        )
        stack.enter_context(
            background(
                [str(BIN / "gunicorn"), "portal.wsgi", "-c", str(ROOT / "gunicorn.conf.py")]
                + ["-b", f"127.0.0.1:{portal_port}"],
                env,
                work / "gunicorn.log",
                lambda: _answers(portal_port, "/healthz"),
                "gunicorn",
            )
        )
        worker_log = work / "worker.log"
        stack.enter_context(
            background(
                [
                    PYTHON,
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
                    env["CELERY_TASK_DEFAULT_QUEUE"],
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                env,
                worker_log,
                lambda: "ready" in worker_log.read_text(),
                "celery worker",
            )
        )
        api = _Api(portal_port, token)
        _, templates = api.call("GET", "/api/v1/scaffolder/templates/")
        template_id = next(t["id"] for t in templates["results"] if t["title"] == "ML project")
        _portal_round(api, template_id, f"Warm Up {uuid.uuid4().hex[:6]}")
        portal, plain = [], []
        for i in range(s["rounds"]):
            tag = uuid.uuid4().hex[:6]
            portal.append(_portal_round(api, template_id, f"Bench {i} {tag}"))
            plain_name = f"Plain {i} {tag}"
            remote_name = plain_name.lower().replace(" ", "-")
            bare = work / "git" / "fraud" / f"{remote_name}.git"  # made beforehand, like an empty repository on a forge
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True, capture_output=True)
            remote = f"{git_url}/fraud/{remote_name}.git".replace("http://", f"http://bench:{token}@")
            plain.append(_plain_round(work, plain_name, remote, env))
        newcomer = _newcomer(api, template_id, work, env, token, git_url, mlflow) if s["newcomer"] else None
    searchable = [r["searchable"] for r in portal]
    succeeded = [r["succeeded"] for r in portal]
    ran = [r["job"] for r in portal]
    overhead = statistics.median(succeeded) - statistics.median(plain)
    result.metrics += [
        Metric("submit → searchable in the catalog: p50", _percentile(searchable, 50), "s", digits=2),
        Metric(
            "submit → searchable in the catalog: p95", _percentile(searchable, 95), "s", f"<= {SEARCHABLE_TARGET_S}", 2
        ),
        Metric("submit → run succeeded (MLflow experiment included): p50", _percentile(succeeded, 50), "s", digits=2),
        Metric("by hand: cookiecutter + git init/commit/push (peer): p50", _percentile(plain, 50), "s", digits=2),
        Metric("portal overhead over by hand (medians)", overhead, "s", f"<= {OVERHEAD_TARGET_S}", 2),
        Metric("the run's job alone (all seven steps): p50", _percentile(ran, 50), "s", digits=2),
        Metric(
            "the job alone minus by hand (medians)", statistics.median(ran) - statistics.median(plain), "s", digits=2
        ),
    ]
    result.ratios += [
        Ratio("submit → run succeeded ÷ by hand (medians)", statistics.median(succeeded) / statistics.median(plain)),
        Ratio("the job alone ÷ by hand (medians)", statistics.median(ran) / statistics.median(plain)),
    ]
    if newcomer:
        result.metrics.append(
            Metric(
                "submit → first model version in the catalog (clone, make test, make train, sync)",
                newcomer["seconds"],
                "s",
                "<= 300",
                1,
            )
        )
    result.notes.append(
        "the portal's time includes the broker hand-off (the embedded filesystem broker polls every 0.1 s, Redis "
        "hands over at once), the isolated render, the catalog registration and the MLflow experiment; the peer "
        "renders without isolation and registers nothing"
    )
    return result
