"""governance_flow: request → gates → approve → apply, server side, and the risk inbox with 1,000 open requests.

Runs on PostgreSQL and Redis (a database ``bench_gov_<pid>``, Redis db 15 with a private queue; when
either does not answer it runs on SQLite and the filesystem broker and says so), with a real Celery
worker, a real ``mlflow server`` and a real manifest repository (a bare git repository).

Flow (one request at a time, as a CI pipeline sends them): ``promotion_request`` → the gates job →
``promotion_decide`` (approve) → the apply job (MLflow alias, manifest commit, deployment). The
server-side time adds the two service calls, each job's queue wait (created → started) and run time;
the time between "gates done" and the approval is a person's and is not counted. MLflow's share is
the apply job's "Set the MLflow alias" step; the manifest step is git's share.

Inbox: ``/governance/inbox/`` signed in as rita through gunicorn, first with 20 open requests (the
peer), then with 1,000: one client at a time (an approver opening the page: the target), then 8
concurrent clients (the whole risk team at once, reported beside it).

Workers: ``python -m bench.governance_flow prepare|flows|inbox …`` (environment set by the parent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.catalog_common import CLIENTS, GUNICORN_CMD, check, gunicorn, pg_available, pg_database, pg_portal_url
from bench.common import (
    PYTHON,
    BenchError,
    Metric,
    Ratio,
    Result,
    Size,
    background,
    django_env,
    emit,
    manage,
    redis_answers,
    run_json,
)
from bench.common import setup_django as _setup_django
from bench.http_load import free_port, load, session_login

NAME = "governance_flow"
FLOW_TARGET_MS = 500
INBOX_TARGET_MS = 150
SIZES = {
    "smoke": {"flows": 3, "open": 60, "peer_open": 20, "seconds": 1.0, "warmup": 0.5},
    "full": {"flows": 40, "open": 1_000, "peer_open": 20, "seconds": 8.0, "warmup": 2.0},
}
FEATURE = {
    "computation_logic": "SUM(amount) 7d",
    "null_handling": "zero_fill",
    "data_type": "float32",
    "source_table": "t",
}


def _mlflow(var: Path, stack: ExitStack) -> str:
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(url + "/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    args = [str(Path(PYTHON).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{var / 'mlflow.db'}",
            "--default-artifact-root", str(var / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1"]  # fmt: skip
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    stack.enter_context(background(args, env, var / "mlflow.log", ready, "mlflow server"))
    return url


def _worker(env: dict[str, str], var: Path, stack: ExitStack) -> None:
    log = var / "worker.log"
    args = [PYTHON, "-m", "celery", "-A", "portal", "worker", "--pool", "threads", "--concurrency", "2",
            "--queues", env["CELERY_TASK_DEFAULT_QUEUE"], "--loglevel", "INFO", "--without-gossip",
            "--without-mingle", "--hostname", f"{env['CELERY_TASK_DEFAULT_QUEUE']}@%h"]  # fmt: skip
    stack.enter_context(
        background(args, env, log, lambda: log.exists() and "ready" in log.read_text(), "celery worker")
    )


def _stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def measure(size: Size) -> Result:
    s = SIZES[size]
    on_pg = pg_available() is None and redis_answers()
    engine = "PostgreSQL + Redis" if on_pg else "SQLite + filesystem broker"
    result = Result(
        NAME,
        f"Promotion request → gates → approve → apply (server side); the risk inbox with {s['open']:,} open requests",
        peer="MLflow's own alias update inside the same flow; the inbox with "
        f"{s['peer_open']} open requests in the same run",
        size=size,
        runs=[
            f"{engine}, a real Celery worker (threads, concurrency 2), `mlflow server` (SQLite store), "
            "a bare git repository as the environment manifest repository",
            f"{s['flows']} flows, one at a time: `promotion_request` (dana) → gates job → `promotion_decide` (rita) → "
            "apply job; server side = both service calls + each job's queue wait + run time",
            f"inbox: `{GUNICORN_CMD}`, signed in as rita, GET `/governance/inbox/` with {s['peer_open']} and "
            f"then {s['open']:,} open requests (10 shown per page): one client ({s['warmup']:g} s warm-up, "
            f"{s['seconds']:g} s measured), then {CLIENTS} concurrent clients ({s['seconds']:g} s measured)",
        ],
    )
    if not on_pg:
        result.notes.append("PostgreSQL or Redis did not answer: measured on SQLite and the filesystem broker instead")
    with tempfile.TemporaryDirectory(prefix="bench-governance-") as tmp, ExitStack() as stack:
        var = Path(tmp)
        if on_pg:
            db_url = pg_portal_url(stack.enter_context(pg_database("_gov")))
            broker = "redis://127.0.0.1:6379/15"
        else:
            db_url, broker = f"sqlite:///{var / 'portal.sqlite3'}", f"filesystem://{var / 'broker'}"
        mlflow = _mlflow(var, stack)
        env = django_env(
            db_url,
            var,
            ALLOWED_HOSTS="127.0.0.1",
            CELERY_BROKER_URL=broker,
            CELERY_TASK_DEFAULT_QUEUE=f"bench-gov-{uuid.uuid4().hex[:8]}",
            MLFLOW_TRACKING_URI=mlflow,
            GOVERNANCE_MANIFEST_REPO=str(var / "environments.git"),
            DEMO_PASSWORD="demo",
            JOB_HEARTBEAT_SECONDS="5",
        )
        if not on_pg:
            env["CELERY_FILESYSTEM_DIR"] = str(var / "broker")
        manage("migrate", "--verbosity", "0", env=env)
        manage("seed_demo", "--quiet-logins", env=env)
        run_json([PYTHON, "-m", "bench.governance_flow", "prepare", "--models", str(s["flows"])], env)
        _worker(env, var, stack)
        flows = run_json([PYTHON, "-m", "bench.governance_flow", "flows", "--count", str(s["flows"])], env)
        inbox = {}
        for open_count in (s["peer_open"], s["open"]):
            queries = run_json([PYTHON, "-m", "bench.governance_flow", "inbox", "--open", str(open_count)], env)
            with gunicorn(env, var / "gunicorn.log") as port:
                headers = {"Cookie": session_login(port, "rita", "demo")}
                load(port, ["/governance/inbox/"], headers, s["warmup"], clients=1)
                alone = load(port, ["/governance/inbox/"], headers, s["seconds"], clients=1)
                crowd = load(port, ["/governance/inbox/"], headers, s["seconds"])
            check(alone, f"inbox with {open_count} open requests")
            check(crowd, f"inbox with {open_count} open requests, {CLIENTS} clients")
            inbox[open_count] = (alone, crowd, queries["queries"])
    total_p50, total_p95 = _stats(flows["total_ms"])
    result.metrics += [
        Metric(f"{engine}: request → applied, server side, p95", total_p95, "ms", f"<= {FLOW_TARGET_MS}", digits=1),
        Metric("… p50", total_p50, "ms", digits=1),
    ]
    for key, label in (
        ("request_ms", "`promotion_request` call"),
        ("gates_wait_ms", "gates job queue wait"),
        ("gates_run_ms", "gates job run"),
        ("approve_ms", "`promotion_decide` call"),
        ("apply_wait_ms", "apply job queue wait"),
        ("apply_run_ms", "apply job run"),
        ("mlflow_ms", "… of which MLflow alias update (peer)"),
        ("git_ms", "… of which manifest commit and push"),
    ):
        p50, p95 = _stats(flows[key])
        result.metrics.append(Metric(f"{label}: p50 / p95", p50, "ms", digits=1))
        result.metrics[-1].label += f" (p95 {p95:.1f} ms)"
    big, small = inbox[s["open"]], inbox[s["peer_open"]]
    n = f"{s['open']:,}"
    result.metrics += [
        Metric(f"inbox, {n} open requests: p95", big[0].percentile(95), "ms", f"<= {INBOX_TARGET_MS}", digits=1),
        Metric(f"inbox, {n} open requests: p50", big[0].percentile(50), "ms", digits=1),
        Metric(f"inbox, {s['peer_open']} open requests (peer): p95", small[0].percentile(95), "ms", digits=1),
        Metric(f"inbox, {n} open requests, {CLIENTS} clients at once: p95", big[1].percentile(95), "ms", digits=1),
        Metric("… p50", big[1].percentile(50), "ms", digits=1),
        Metric("… throughput", big[1].rate, "pages/s"),
        Metric(
            f"inbox, {s['peer_open']} open requests, {CLIENTS} clients: p95", small[1].percentile(95), "ms", digits=1
        ),
        Metric(f"inbox queries with {n} / {s['peer_open']} open requests", big[2], "queries"),
    ]
    if big[2] != small[2]:
        result.notes.append(f"**query count grew with the data**: {small[2]} → {big[2]}")
    mlflow_share = sum(flows["mlflow_ms"]) / sum(flows["total_ms"])
    queue_share = (sum(flows["gates_wait_ms"]) + sum(flows["apply_wait_ms"])) / sum(flows["total_ms"])
    result.ratios += [
        Ratio("MLflow alias update ÷ whole flow (MLflow's share)", mlflow_share),
        Ratio("queue waits ÷ whole flow", queue_share),
        Ratio(
            f"inbox p95: {s['open']:,} ÷ {s['peer_open']} open requests",
            big[0].percentile(95) / small[0].percentile(95),
        ),
    ]
    result.notes.append("the load generator, the worker, MLflow and the database share the machine's 2 cores")
    return result


# --- workers (run with the portal's environment) ---------------------------------------------------------------


def _prepare(models: int) -> dict:
    """Models with two complete versions in MLflow, synced into the catalog, with a served feature."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from mlflow import MlflowClient
    from mlflow.entities import Metric as MlMetric
    from mlflow.entities import Param

    from catalog.services.features import feature_register
    from portal.models import Team

    client = MlflowClient()
    team = Team.objects.get(slug="fraud")
    feature = feature_register(actor=None, name="txn_amount_7d", team=team, **FEATURE).version.version
    experiment = client.create_experiment("bench-governance")
    tags = {
        "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567",
        "mlplatform.image_digest": "sha256:" + "ab" * 32,
        "mlplatform.data_snapshot": "s3://bench/txn@1",
        "mlplatform.feature_versions": f'{{"txn_amount_7d": "{feature}"}}',
    }
    now = int(time.time() * 1000)
    for i in range(models + 1):
        name = f"bench-scorer-{i:03d}"
        client.create_registered_model(name, tags={"mlplatform.team": "fraud", "mlplatform.task": "classification"})
        run = client.create_run(experiment, tags=tags)
        client.log_batch(run.info.run_id, metrics=[MlMetric("accuracy", 0.95, now, 0), MlMetric("auc", 0.93, now, 0)],
                         params=[Param("depth", "4")])  # fmt: skip
        client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    call_command("sync_mlflow", "--full", stdout=open(os.devnull, "w"))
    get_user_model().objects.filter(username__in=["dana", "rita"]).update(email="")  # no console e-mail noise
    return {"models": models}


def _wait(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError("a job did not finish in time")
        time.sleep(0.005)


def _ms(a, b) -> float:
    return (b - a).total_seconds() * 1000


def _flows(count: int) -> dict:
    from django.contrib.auth import get_user_model

    from catalog.models import ModelVersion
    from governance.models import Promotion, Status
    from governance.services import promotion_decide, promotion_request
    from portal.models import Job

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["dana", "rita"])}
    keys = ("request_ms", "gates_wait_ms", "gates_run_ms", "approve_ms", "apply_wait_ms", "apply_run_ms")
    out: dict[str, list[float]] = {k: [] for k in (*keys, "mlflow_ms", "git_ms", "total_ms")}
    for i in range(count + 1):  # the first flow warms up the worker, MLflow and git; it is not counted
        mv = ModelVersion.objects.select_related("model__team").get(model__name=f"bench-scorer-{i:03d}", version=1)
        started = time.perf_counter()
        p, _ = promotion_request(actor=users["dana"], model_version=mv, environment="production", justification="CI")
        request_ms = (time.perf_counter() - started) * 1000
        _wait(lambda p=p: Promotion.objects.filter(pk=p.pk, status=Status.AWAITING_APPROVAL).exists())
        started = time.perf_counter()
        promotion_decide(actor=users["rita"], promotion=p, decision="approve")
        approve_ms = (time.perf_counter() - started) * 1000
        _wait(lambda p=p: Promotion.objects.filter(pk=p.pk, status__in=[Status.APPLIED, Status.APPROVED])
              .exclude(apply_job__finished_at=None).exists())  # fmt: skip
        p.refresh_from_db()
        if p.status != Status.APPLIED:
            raise BenchError(f"promotion #{p.pk} was not applied: {p.apply_error}")
        gates, apply = Job.objects.get(pk=p.gates_job_id), Job.objects.get(pk=p.apply_job_id)
        step_ms = {s["name"]: s["duration_seconds"] * 1000 for s in apply.steps}
        if i == 0:
            continue
        row = {
            "request_ms": request_ms,
            "gates_wait_ms": _ms(gates.created_at, gates.started_at),
            "gates_run_ms": _ms(gates.started_at, gates.finished_at),
            "approve_ms": approve_ms,
            "apply_wait_ms": _ms(apply.created_at, apply.started_at),
            "apply_run_ms": _ms(apply.started_at, apply.finished_at),
            "mlflow_ms": next(v for k, v in step_ms.items() if k.startswith("Set the MLflow alias")),
            "git_ms": step_ms["Commit the environment manifest"],
        }
        row["total_ms"] = sum(row[k] for k in keys)
        for key, value in row.items():
            out[key].append(value)
    return out


def _inbox(open_count: int) -> dict:
    """Top up to ``open_count`` requests awaiting approval (bulk, with gate results), and count the page's queries."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Model, ModelVersion
    from governance.models import GateResult, Promotion, Status
    from portal.models import Team

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["dana", "rita"])}
    team = Team.objects.get(slug="fraud")
    have = Promotion.objects.filter(status=Status.AWAITING_APPROVAL).count()
    template = ModelVersion.objects.filter(model__name__startswith="bench-scorer-").first()
    new = range(have, open_count)
    models = Model.objects.bulk_create(
        [Model(name=f"bench-inbox-{i:05d}", team=team, task="classification") for i in new]
    )
    same = {"metrics": template.metrics, "params": template.params, "feature_versions": template.feature_versions}
    versions = ModelVersion.objects.bulk_create(
        [ModelVersion(model=m, version=1, lineage_complete=6, run_id=f"r{m.pk}", **same) for m in models]
    )
    promotions = Promotion.objects.bulk_create(
        [Promotion(model=mv.model, model_version=mv, environment="production", justification="bulk",
                   status=Status.AWAITING_APPROVAL, requested_by=users["dana"], required_approvals=1, gate_runs=1)
         for mv in versions]
    )  # fmt: skip
    GateResult.objects.bulk_create(
        [GateResult(promotion=p, run=1, gate=gate, title=gate, passed=True, summary="ok", details={})
         for p in promotions for gate in ("lineage", "evaluation", "feature_parity", "risk_policy")]
    )  # fmt: skip
    client = Client()
    client.force_login(users["rita"])
    client.get("/governance/inbox/")
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/governance/inbox/").status_code == 200
    return {
        "open": Promotion.objects.filter(status=Status.AWAITING_APPROVAL).count(),
        "queries": len(ctx.captured_queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["prepare", "flows", "inbox"])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--open", type=int, default=20)
    args = parser.parse_args()
    _setup_django()
    if args.what == "prepare":
        emit(_prepare(args.models))
    elif args.what == "flows":
        emit(_flows(args.count))
    else:
        from django.conf import settings

        settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
        emit(_inbox(args.open))


if __name__ == "__main__":
    main()
