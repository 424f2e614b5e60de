"""catalog_sync: a full MLflow sync of the generated catalog, then an unchanged re-sync, from a real ``mlflow server``.

The server serves the ``mlflow-runs`` database of ``bench/catalog_gen.py`` (the
catalog of catalog_search with a run behind every version, cached in
.bench-cache/). The portal side is ``manage.py sync_mlflow --full`` (the job
with its steps, log lines and audit events) into a fresh portal database, then
``manage.py sync_mlflow`` again with nothing changed; both are timed inside one
process, after Django and MLflow are imported (as in a worker); for the full
size the re-sync is also timed as a whole command. SQLite always; PostgreSQL
too (a throwaway ``bench_catalog_<pid>_sync``) when 127.0.0.1:5432 answers.

Peer: a bare ``MlflowClient`` fetching the same registered models, all their
versions and their runs (``search_runs`` in batches of the sync's RUN_CHUNK run
ids) from the same server, timed the same way, in the SQLite worker before its
syncs: one request at a time, and again with as many run batches in flight as
the sync reads groups ahead.

Workers (``python -m bench.catalog_sync prepare|sync``, DATABASE_URL set by the
parent) start together with the server, so their start-ups overlap; each says
"ready" and runs its timed part when told to, one at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.catalog_common import pg_available, pg_database, pg_portal_url
from bench.catalog_gen import FEATURES, TEAM_SLUGS, copy_sqlite, ensure_sqlite, mlflow_runs_cache_path
from bench.catalog_gen import SIZES as GEN_SIZES
from bench.common import (
    CACHE_DIR,
    PYTHON,
    ROOT,
    BenchError,
    Metric,
    Ratio,
    Result,
    Size,
    django_env,
    emit,
    manage,
    run_json,
    setup_django,
    sqlite_url,
    stopwatch,
)
from bench.mlflow_server import SERVER_CMD, group_cpu, mlflow_server, wait_for

NAME = "catalog_sync"
FULL_TARGET_S = 60
RESYNC_TARGET_S = 5
RATIO_TARGET = 1.5
SIZES: dict[str, dict[str, Any]] = {"smoke": {"command": False}, "full": {"command": True}}
PREPARED_VERSION = 1  # bump when the prepared (empty) portal database changes


def prepared_portal(env_dir: Path) -> Path:
    """A copy of a migrated portal database with the demo users, the generated teams and the features the runs claim.

    Cached; the sync worker migrates the copy again, so migrations added since the cache was made are applied.
    """
    cached = CACHE_DIR / f"catalog-sync-portal-t{len(TEAM_SLUGS)}-f{len(FEATURES)}-v{PREPARED_VERSION}.sqlite3"
    if not cached.exists():
        CACHE_DIR.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bench-catalog-sync-", dir=CACHE_DIR) as tmp:
            partial = Path(tmp) / cached.name
            run_json([PYTHON, "-m", "bench.catalog_sync", "prepare"], django_env(sqlite_url(partial), Path(tmp)))
            partial.rename(cached)
    return copy_sqlite(cached, env_dir)


class _Worker:
    """A worker process: it imports, prepares and waits for the server, says "ready", then runs its timed part on "go".

    All workers start together, so their start-up overlaps the server's; their timed parts run one at a time.
    """

    def __init__(self, label: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.label, self.log = label, log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
            )

    def _failed(self, when: str) -> BenchError:
        return BenchError(
            f"{self.label} worker failed {when} (exit {self.proc.wait()}):\n{self.log.read_text()[-3000:]}"
        )

    def ready(self) -> None:
        while (line := self.proc.stdout.readline()) and line.strip() != "ready":
            pass
        if not line:
            raise self._failed("before it was ready")

    def go(self) -> dict[str, Any]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.read()
        if self.proc.wait() != 0 or not out.strip():
            raise self._failed("while measuring")
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _sync_worker(label: str, db_url: str, var_dir: Path, url: str, pgid: int, *, prepare: bool, peer: bool) -> _Worker:
    args = [PYTHON, "-m", "bench.catalog_sync", "sync", "--server-pgid", str(pgid)]
    args += (["--prepare"] if prepare else []) + (["--peer"] if peer else [])
    env = django_env(db_url, var_dir, MLFLOW_TRACKING_URI=url)
    return _Worker(label, args, env, var_dir / "worker.log")


def _portal_answer(label: str, answer: dict[str, Any], db_url: str, var_dir: Path, url: str, command: bool) -> None:
    """Check that both syncs succeeded; then, if asked, time the re-sync again as a whole command."""
    for run in (answer["full"], answer["again"]):
        if run["status"] != "succeeded":
            raise BenchError(f"{label}: the sync job {run['status']}: {run['error']}")
    answer["command"] = None
    if command:
        with stopwatch() as took:
            printed = manage("sync_mlflow", env=django_env(db_url, var_dir, MLFLOW_TRACKING_URI=url))
        if "versions_written=0" not in printed or "models_changed=0" not in printed:
            raise BenchError(f"{label}: the command re-sync wrote something:\n{printed[-1000:]}")
        answer["command"] = took[0]


def _check(label: str, portal: dict[str, Any], peer: dict[str, Any], versions: int) -> None:
    full, again = portal["full"], portal["again"]
    if not (full["versions"] == peer["versions"] == versions and full["models"] == peer["models"]):
        raise BenchError(f"{label}: the catalog holds {full['versions']} versions, MLflow {peer['versions']}")
    if full["result"]["versions_written"] != versions or full["result"]["runs_read"] != peer["runs"]:
        raise BenchError(f"{label}: the full sync wrote {full['result']}")
    if again["result"]["versions_written"] or again["result"]["models_changed"] or again["audit_events_added"]:
        raise BenchError(f"{label}: the unchanged re-sync wrote {again['result']}")
    if not portal["audit_ok"]:
        raise BenchError(f"{label}: the audit chain does not verify after the sync")


def _ratio_percent(label: str, value: float) -> Metric:
    # A Metric rather than a Ratio so the target is checked and shown; in % because targets print as integers.
    return Metric(f"{label}, in % of the client's time", value * 100, "%", f"<= {RATIO_TARGET * 100:.0f}")


def _add(result: Result, label: str, portal: dict[str, Any], peers: dict[str, Any], versions: int) -> None:
    full, again = portal["full"], portal["again"]
    plain, parallel = peers["plain"]["seconds"], peers["parallel"]["seconds"]
    threads = peers["parallel"]["threads"]
    result.metrics += [
        Metric(f"{label}: full sync, {versions:,} versions", full["seconds"], "s", f"<= {FULL_TARGET_S}", digits=1),
        Metric(f"{label}: full sync rate", versions / full["seconds"], "versions/s"),
        _ratio_percent(f"{label}: full sync ÷ bare client", full["seconds"] / plain),
        _ratio_percent(
            f"{label}: full sync ÷ bare client with {threads} requests in flight", full["seconds"] / parallel
        ),
        Metric(f"{label}: MLflow server CPU during the full sync", full["server_cpu"], "s", digits=1),
        Metric(f"{label}: unchanged re-sync", again["seconds"], "s", f"<= {RESYNC_TARGET_S}", digits=2),
    ]
    if portal["command"] is not None:
        result.metrics.append(
            Metric(
                f"{label}: unchanged re-sync, whole `manage.py sync_mlflow` (Python start and imports included)",
                portal["command"],
                "s",
                digits=1,
            )
        )
    result.ratios += [
        Ratio(f"{label}: full sync ÷ bare client", full["seconds"] / plain),
        Ratio(f"{label}: full sync ÷ bare client with {threads} requests in flight", full["seconds"] / parallel),
        Ratio(
            f"{label}: unchanged re-sync ÷ the bare client's listing of the registered models",
            again["seconds"] / peers["plain"]["parts"]["models"],
        ),
    ]
    steps = ", ".join(f"{s['name']} {s['duration_seconds']:.1f} s" for s in full["steps"])
    result.notes.append(
        f"{label}: full sync steps: {steps}; {full['audit_events_added']:,} audit events and "
        f"{full['log_lines']:,} job log lines written; {full['result']['problems']:,} problems reported "
        "(runs claiming an unregistered feature version); the audit chain verifies afterwards"
    )


def _peer_metrics(result: Result, peers: dict[str, Any], versions: int) -> None:
    plain, parallel = peers["plain"], peers["parallel"]
    result.metrics += [
        Metric("bare `MlflowClient` (peer), one request at a time", plain["seconds"], "s", digits=1),
        Metric("bare `MlflowClient` (peer) rate", versions / plain["seconds"], "versions/s"),
        Metric(
            f"bare `MlflowClient` (peer), {parallel['threads']} run batches in flight",
            parallel["seconds"],
            "s",
            digits=1,
        ),
        Metric("bare `MlflowClient`: listing the registered models alone", plain["parts"]["models"], "s", digits=2),
        Metric("MLflow server CPU during the peer (one request at a time)", plain["server_cpu"], "s", digits=1),
    ]


def measure(size: Size) -> Result:
    g, s = GEN_SIZES[size], SIZES[size]
    versions = g["versions"]
    result = Result(
        NAME,
        f"Full MLflow sync of {versions:,} versions ({g['models']:,} models, {g['projects']:,} projects) "
        "from a real `mlflow server`, and an unchanged re-sync",
        peer="",
        size=size,
    )
    mlflow_db, took = ensure_sqlite(size, "mlflow-runs")
    if took:
        result.notes.append(f"MLflow database with runs generated now in {took:.0f} s (now cached)")
    why_not_pg = pg_available()
    if why_not_pg:
        result.notes.append(f"PostgreSQL skipped: 127.0.0.1:5432 did not answer ({why_not_pg})")
    with tempfile.TemporaryDirectory(prefix="bench-catalog-sync-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        served = copy_sqlite(mlflow_db, work)
        sqlite_dir, pg_dir = work / "sqlite", work / "pg"
        sqlite_dir.mkdir()
        pg_dir.mkdir()
        sqlite_url_ = sqlite_url(prepared_portal(sqlite_dir))
        pg_url = None if why_not_pg else pg_portal_url(stack.enter_context(pg_database("_sync")))
        url, pgid = stack.enter_context(mlflow_server(served, work))
        workers = [_sync_worker("SQLite", sqlite_url_, sqlite_dir, url, pgid, prepare=False, peer=True)]
        if pg_url:
            workers.append(_sync_worker("PostgreSQL", pg_url, pg_dir, url, pgid, prepare=True, peer=False))
        stack.callback(lambda: [w.stop() for w in workers])
        for worker in workers:
            worker.ready()
        sqlite = workers[0].go()
        peers = sqlite["peers"]
        _portal_answer("SQLite", sqlite, sqlite_url_, sqlite_dir, url, s["command"])
        _check("SQLite", sqlite, peers["plain"], versions)
        _add(result, "SQLite", sqlite, peers, versions)
        _peer_metrics(result, peers, versions)
        if pg_url:
            pg = workers[1].go()
            _portal_answer("PostgreSQL", pg, pg_url, pg_dir, url, s["command"])
            _check("PostgreSQL", pg, peers["plain"], versions)
            _add(result, "PostgreSQL", pg, peers, versions)
    plain = peers["plain"]
    run_chunk, model_chunk, threads = plain["run_chunk"], plain["model_chunk"], peers["parallel"]["threads"]
    result.peer = (
        "a bare `MlflowClient` fetching the same registered models, all their versions and their runs "
        f"(`search_runs` in batches of {run_chunk:,} run ids) from the same server, one request at a time "
        f"(and, second figure, with {threads} run batches in flight, as many as the sync reads ahead)"
    )
    result.runs = [
        "`bench/catalog_gen.py mlflow-runs`: the catalog of catalog_search in MLflow's schema (registered "
        "models with `mlplatform.*` tags, versions, aliases), plus one experiment per project and a run per "
        "version with the lineage contract's tags, params, metrics and, for some, a logged dataset input; "
        f"bulk-inserted after `SqlAlchemyStore` created the schema; cached as "
        f"`{mlflow_runs_cache_path(size).relative_to(ROOT)}` and served from a copy",
        f"`{SERVER_CMD}` (uvicorn, MLflow's default) on a free port, with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        "peer, in the SQLite worker before its syncs: after a light warm-up (one call of each kind), "
        "`MlflowClient.search_experiments`, "
        "`search_registered_models` (pages of 1,000), `search_model_versions` (pages of 10,000) and "
        f'`search_runs(filter_string="attributes.run_id IN (…)")` for every version\'s run, {run_chunk:,} ids '
        f"per call, timed after `import mlflow`; once one request at a time, then with the run batches spread "
        f"over {threads} threads",
        "portal: a fresh database (`migrate`, `seed_demo --quiet-logins`, the generated teams, the "
        f"{len(FEATURES)} features the runs claim; SQLite from a cached copy), then in one process "
        "`call_command('sync_mlflow', '--full')` (the job: steps, log lines, audit events, search index), "
        "timed from the call to its return, then `call_command('sync_mlflow')` with nothing changed"
        + ("; then `manage.py sync_mlflow` once more, timed from the shell" if s["command"] else ""),
        f"the sync reads and writes in groups of {model_chunk} models: one `search_model_versions` call "
        f"(`name IN (…)`), runs {run_chunk:,} ids per `search_runs` call, then one transaction of bulk "
        f"writes; {threads} groups are read ahead in background threads while one is written",
    ]
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in plain["parts"].items())
    result.notes += [
        f"peer: {plain['models']:,} models, {plain['versions']:,} versions, {plain['runs']:,} runs ({parts}, "
        "one request at a time)",
        f"the MLflow server is the slow side: it spent {plain['server_cpu'] / plain['runs'] * 1000:.2f} ms of CPU "
        "per run it returned to the peer (it parses the `run_id IN (…)` filter with sqlparse, loads tags, params "
        "and metrics through its ORM and encodes JSON); listing the registered models "
        f"({plain['parts']['models'] / plain['models'] * 1000:.1f} ms per model, tags, aliases and latest "
        "versions included) is the floor of any re-sync, which must list them all to see tag and alias changes: "
        "MLflow does not move a model's timestamp for those. The server, the sync and the peer share the "
        "machine's cores",
        f"targets: full sync ≤ {FULL_TARGET_S} s and unchanged re-sync ≤ {RESYNC_TARGET_S} s at "
        f"{GEN_SIZES['full']['versions']:,} versions, full sync ≤ {RATIO_TARGET:g}× the bare client; they apply "
        "to the sync itself (a worker has Django and MLflow imported already); the whole command adds Python's "
        "start and those imports",
    ]
    return result


# --- Workers ------------------------------------------------------------------


def ready_then_wait() -> None:
    """Tell the parent this worker is ready to measure, and wait for its go."""
    print("ready", flush=True)
    sys.stdin.readline()


def _prepare() -> float:
    """A fresh portal database for the sync (DATABASE_URL): migrated, demo users, teams, features."""
    setup_django()
    from django.core.management import call_command

    from catalog.services.features import feature_register
    from portal.models import Team
    from portal.services.teams import team_create

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", "--quiet-logins")
    have = set(Team.objects.values_list("slug", flat=True))
    for slug in TEAM_SLUGS:
        if slug not in have:
            team_create(actor=None, slug=slug, name=slug.title(), description=f"The {slug} team.")
    owner = Team.objects.get(slug=TEAM_SLUGS[0])
    for name, definition in FEATURES.items():
        feature_register(actor=None, name=name, team=owner, **definition)
    return time.perf_counter() - started


def _sync(prepare: bool, server_pgid: int, peer: bool) -> None:
    """Time a full sync, then an unchanged re-sync, as the command runs them (the job), in this process.

    With ``peer``, the bare client's fetches are timed first, in the same process (one start-up less).
    """
    if prepare:
        _prepare()
    setup_django()
    from io import StringIO

    from django.conf import settings
    from django.core.management import call_command

    import catalog.services.mlflow_sync  # noqa: F401 - imports MLflow before the clock starts
    from catalog.models import Model, ModelVersion
    from portal.models import AuditEvent, Job, JobLogLine
    from portal.services.audit import audit_verify

    call_command("migrate", verbosity=0, interactive=False)
    uri = settings.MLFLOW_TRACKING_URI
    wait_for(uri)
    if peer:
        _peer_warm_up(uri)
    ready_then_wait()
    peers = {}
    if peer:
        peers = {"plain": _peer_fetch(uri, server_pgid, False), "parallel": _peer_fetch(uri, server_pgid, True)}

    def audit_events() -> int:  # the sync's own, not the job's
        return AuditEvent.objects.exclude(action__startswith="job.").count()

    def timed(*args: str) -> dict[str, Any]:
        events, cpu = audit_events(), group_cpu(server_pgid)
        with stopwatch() as took:
            try:
                call_command("sync_mlflow", *args, stdout=StringIO())
            except Exception:  # noqa: BLE001 - a failed job is reported through its status
                pass
        server_cpu = group_cpu(server_pgid) - cpu
        job = Job.objects.filter(kind="catalog.sync_mlflow").latest("pk")
        return {
            "seconds": took[0],
            "server_cpu": server_cpu,
            "status": job.status,
            "error": job.error,
            "result": job.result or {},
            "steps": job.steps,
            "log_lines": JobLogLine.objects.filter(job=job).count(),
            "audit_events_added": audit_events() - events,
            "models": Model.objects.count(),
            "versions": ModelVersion.objects.count(),
        }

    full = timed("--full")
    again = timed()
    emit({"peers": peers, "full": full, "again": again, "audit_ok": audit_verify().ok})


def _pages(fn: Any, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = fn(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def _peer_warm_up(uri: str) -> None:
    """The server's first answer of each kind imports and prepares a lot: one call of each, untimed."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from catalog.services.mlflow_reads import RUN_CHUNK

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=1000)]
    client.search_registered_models(max_results=1000)
    quoted = ", ".join(f"'{v.run_id}'" for v in client.search_model_versions(max_results=RUN_CHUNK))
    client.search_runs(experiments, f"attributes.run_id IN ({quoted})", ViewType.ALL, max_results=RUN_CHUNK)


def _peer_fetch(uri: str, server_pgid: int, parallel: bool) -> dict[str, Any]:
    """The bare client: every registered model, every version, and their runs (``parallel``: as many run batches
    in flight as the sync reads groups ahead)."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from catalog.services.mlflow_reads import RUN_CHUNK
    from catalog.services.mlflow_sync import MODEL_CHUNK, READ_AHEAD

    threads = READ_AHEAD if parallel else 1
    client = MlflowClient(tracking_uri=uri)
    parts: dict[str, float] = {}
    cpu, started = group_cpu(server_pgid), time.perf_counter()
    experiments = [e.experiment_id for e in _pages(client.search_experiments, view_type=ViewType.ALL, max_results=1000)]
    parts["experiments"] = time.perf_counter() - started
    models = list(_pages(client.search_registered_models, max_results=1000))
    parts["models"] = time.perf_counter() - started - sum(parts.values())
    versions = list(_pages(client.search_model_versions, max_results=10_000))
    parts["versions"] = time.perf_counter() - started - sum(parts.values())
    run_ids = sorted({v.run_id for v in versions if v.run_id})

    def batch(start: int) -> list[Any]:
        quoted = ", ".join(f"'{run_id}'" for run_id in run_ids[start : start + RUN_CHUNK])
        filter_string = f"attributes.run_id IN ({quoted})"
        return list(
            _pages(client.search_runs, experiment_ids=experiments, filter_string=filter_string, max_results=RUN_CHUNK)
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        runs = {run.info.run_id: run for b in pool.map(batch, range(0, len(run_ids), RUN_CHUNK)) for run in b}
    parts["runs"] = time.perf_counter() - started - sum(parts.values())
    return {
        "seconds": time.perf_counter() - started,
        "server_cpu": group_cpu(server_pgid) - cpu,
        "threads": threads,
        "parts": parts,
        "models": len(models),
        "versions": len(versions),
        "runs": len(runs),
        "run_chunk": RUN_CHUNK,
        "model_chunk": MODEL_CHUNK,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Workers of catalog_sync.")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("prepare", help="a fresh portal database for the sync (DATABASE_URL)")
    sync = sub.add_parser("sync", help="time `manage.py sync_mlflow` in-process (DATABASE_URL, MLFLOW_TRACKING_URI)")
    sync.add_argument("--prepare", action="store_true", help="prepare the (empty) database first")
    sync.add_argument("--peer", action="store_true", help="time the bare MlflowClient first")
    sync.add_argument("--server-pgid", type=int, required=True)
    args = parser.parse_args()
    if args.what == "prepare":
        emit({"seconds": _prepare()})
    else:
        _sync(args.prepare, args.server_pgid, args.peer)


if __name__ == "__main__":
    main()
