"""catalog_search: ``GET /api/v1/catalog/search/?q=…`` (with facets) under 8 concurrent clients, against gunicorn.

Runs on SQLite (the generated catalog, cached in .bench-cache/) and on
PostgreSQL (a database ``bench_catalog_<pid>`` filled by the same generator on
each run; skipped with a note when 127.0.0.1:5432 does not answer).

Peer: MLflow's own ``SqlAlchemyStore.search_model_versions(filter_string="name
ILIKE '%q%'")`` over the same models and versions, in MLflow's schema on the
same database engine, from as many processes as the portal's gunicorn has
workers (gunicorn.conf.py), with the same search terms.
Worker: ``python -m bench.catalog_search --db-uri URI --threads 4 --seconds S``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.catalog_common import (
    CLIENTS,
    GUNICORN_CMD,
    THREADS,
    WORKERS,
    check,
    gunicorn,
    load,
    pg_available,
    pg_database,
    pg_mlflow_uri,
    pg_portal_url,
)
from bench.catalog_gen import SIZES as GEN_SIZES
from bench.catalog_gen import copy_sqlite, ensure_sqlite, mlflow_cache_path, portal_cache_path
from bench.common import (
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
)
from bench.http_load import Load

NAME = "catalog_search"
SEARCH_TARGET_MS = 50
FACETS_TARGET_MS = 150
SIZES = {"smoke": {"seconds": 1.5, "warmup": 0.5, "rounds": 1}, "full": {"seconds": 8.0, "warmup": 2.0, "rounds": 2}}
TERMS = ["fraud", "churn", "xgb", "bert", "ranker", "demand", "forecast", "toxicity", "lgbm", "0042", "scoring", "eta"]
FILTERED = [
    ("fraud", "team=fraud"),
    ("xgb", "task=classification"),
    ("demand", "team=forecasting"),
    ("bert", "task=nlp"),
    ("churn", "team=growth"),
    ("ranker", "task=ranking"),
    ("scoring", "team=credit&task=classification"),
    ("lgbm", "team=pricing"),
]
MAX_RESULTS = 20
API = "/api/v1/catalog/search/"
DISTINCT = {"smoke": 1_500, "full": 9_000}  # never-repeated queries: more than the clients can send in the run


def _distinct_terms(portal_db: Path, n: int) -> list[str]:
    """``n`` different queries a person might type: pieces of the catalog's names (word starts, numbers, spans).

    No query repeats, so no cache along the way (the database's, the portal's) answers from a previous one.
    """
    import random
    import sqlite3

    with sqlite3.connect(portal_db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM catalog_searchdoc ORDER BY id")]
    rnd, seen, out = random.Random(20261123), set(), []
    while len(out) < n:
        name = rnd.choice(names)
        starts = [0] + [i + 1 for i, c in enumerate(name) if c == "-"]
        start = rnd.choice(starts) if rnd.random() < 0.7 else rnd.randrange(len(name) - 3)
        term = name[start : start + rnd.randint(3, 14)].strip("-")
        if len(term) >= 3 and term not in seen:
            seen.add(term)
            out.append(term)
    return out


def _plain_paths() -> list[str]:
    return [f"{API}?q={t}" for t in TERMS]


def _filtered_paths() -> list[str]:
    return [f"{API}?q={t}&{f}" for t, f in FILTERED]


def _mlflow_peer(db_uri: str, seconds: float, warmup: float, env: dict[str, str]) -> Load:
    """2 worker processes × 4 threads calling the MLflow store; they start measuring together."""
    args = [PYTHON, "-m", "bench.catalog_search", "--db-uri", db_uri, "--threads", str(THREADS)]
    args += ["--seconds", str(seconds), "--warmup", str(warmup)]
    procs = [
        subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    try:
        for p in procs:
            while (line := p.stdout.readline()) and line.strip() != "ready":
                pass
            if not line:
                raise BenchError(f"MLflow peer worker failed (exit {p.wait()})")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        answers = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in procs]
        for p in procs:
            if p.wait() != 0:
                raise BenchError(f"MLflow peer worker exited {p.returncode}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    total = Load(0, 0.0, [], Counter())
    for a in answers:
        total += Load(len(a["latencies"]), a["seconds"], a["latencies"], Counter({200: len(a["latencies"])}))
    total.seconds /= len(answers)  # they ran side by side
    return total


def _distinct_load(port: int, headers: dict[str, str], terms: list[str], s: dict[str, Any]) -> Load:
    """Every request a query nobody sent before in this run; warm-up on its own share of the terms."""
    paths = [f"{API}?q={quote(t)}" for t in terms]
    cut = len(paths) // 5
    load(port, paths[:cut], headers, s["warmup"], disjoint=True)
    got = load(port, paths[cut:], headers, s["seconds"], disjoint=True)
    if got.requests > len(paths) - cut:
        raise BenchError(f"distinct queries ran out ({got.requests:,} requests, {len(paths) - cut:,} terms)")
    return got


def _run_backend(
    label: str, portal_url: str, mlflow_uri: str, var_dir: Path, s: dict[str, Any], terms: list[str]
) -> tuple[Load, Load, Load, Load, int, dict[str, list[float]]]:
    env = django_env(portal_url, var_dir, ALLOWED_HOSTS="127.0.0.1")
    manage("migrate", "--verbosity", "0", env=env)  # a cached catalog may predate the latest migrations
    token = manage("create_token", "--user", "admin", "--name", "bench", env=env).strip()
    headers = {"Authorization": f"Bearer {token}"}
    with gunicorn(env, var_dir / f"gunicorn-{label}.log") as port:
        load(port, _plain_paths(), headers, s["warmup"])
        load(port, _filtered_paths(), headers, s["warmup"])
        plain = filtered = Load(0, 0.0, [], Counter())
        for _ in range(s["rounds"]):
            plain += load(port, _plain_paths(), headers, s["seconds"] / s["rounds"])
            filtered += load(port, _filtered_paths(), headers, s["seconds"] / s["rounds"])
        distinct = _distinct_load(port, headers, terms, s)
        conn_body = _one(port, headers)
    check(plain, f"{label} search")
    check(distinct, f"{label} search, distinct queries")
    check(filtered, f"{label} search with filters")
    alone = run_json([PYTHON, "-m", "bench.catalog_search", "--selector", "--rounds", str(s["rounds"] * 3)], env)
    peer = _mlflow_peer(mlflow_uri, s["seconds"], s["warmup"], env)
    return plain, filtered, distinct, peer, conn_body, alone


def _one(port: int, headers: dict[str, str]) -> int:
    """The count the portal answers for the first term (a sanity check that the data is there)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"{API}?q={TERMS[0]}", headers={"Host": "127.0.0.1", **headers})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return int(body["count"])


def _median_ms(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] * 1000


def _add(
    result: Result, label: str, plain: Load, filtered: Load, distinct: Load, peer: Load, alone: dict[str, list[float]]
) -> None:
    result.metrics += [
        Metric(f"{label}: search p95 (no filter)", plain.percentile(95), "ms", f"<= {SEARCH_TARGET_MS}", digits=1),
        Metric(f"{label}: search p50 (no filter)", plain.percentile(50), "ms", digits=1),
        Metric(f"{label}: search throughput (no filter)", plain.rate, "requests/s"),
        Metric(
            f"{label}: search p95, every query different (no filter)",
            distinct.percentile(95),
            "ms",
            f"<= {SEARCH_TARGET_MS}",
            digits=1,
        ),
        Metric(f"{label}: search p50, every query different", distinct.percentile(50), "ms", digits=1),
        Metric(
            f"{label}: facet counts — search with `team`/`task` filters, p95",
            filtered.percentile(95),
            "ms",
            f"<= {FACETS_TARGET_MS}",
            digits=1,
        ),
        Metric(f"{label}: search with filters p50", filtered.percentile(50), "ms", digits=1),
        Metric(f"{label}: MLflow `search_model_versions` name ILIKE p95 (peer)", peer.percentile(95), "ms", digits=1),
        Metric(f"{label}: MLflow `search_model_versions` p50 (peer)", peer.percentile(50), "ms", digits=1),
        Metric(f"{label}: MLflow calls/s (peer)", peer.rate, "calls/s"),
        Metric(
            f"{label}: `catalog.selectors.catalog_search()` alone, one thread, no load, median (no filter)",
            _median_ms(alone["plain"]),
            "ms",
            digits=1,
        ),
        Metric(f"{label}: the same with filters, median", _median_ms(alone["filtered"]), "ms", digits=1),
    ]
    result.ratios += [
        Ratio(f"{label}: portal search p95 ÷ MLflow p95", plain.percentile(95) / peer.percentile(95)),
        Ratio(f"{label}: portal search with filters p95 ÷ MLflow p95", filtered.percentile(95) / peer.percentile(95)),
    ]
    result.notes.append(
        f"{label}: {plain.requests:,} + {filtered.requests:,} + {distinct.requests:,} portal requests and "
        f"{peer.requests:,} MLflow calls measured"
    )


def measure(size: Size) -> Result:
    s, g = SIZES[size], GEN_SIZES[size]
    result = Result(
        NAME,
        f"Catalog search API with facets under {CLIENTS} concurrent clients "
        f"({g['models']:,} models, {g['versions']:,} versions)",
        peer="MLflow's own `SqlAlchemyStore.search_model_versions(filter_string=\"name ILIKE '%q%'\", "
        f"max_results={MAX_RESULTS})` on the same models and versions, same database engine, same terms",
        size=size,
        runs=[
            f"catalog generated by `bench/catalog_gen.py`: {g['teams']} teams, {g['projects']:,} projects, "
            f"{g['models']:,} models, {g['versions']:,} versions (one model with {g['big']:,}), bulk-inserted with "
            "`bulk_create` after `migrate` and `seed_demo --quiet-logins`; SQLite cached as "
            f"`{portal_cache_path(size).relative_to(ROOT)}`, PostgreSQL generated on each run into "
            "`bench_catalog_<pid>` on 127.0.0.1:5432",
            "`manage.py create_token --user admin --name bench`; "
            f"`{GUNICORN_CMD}` with DEBUG=false, ALLOWED_HOSTS=127.0.0.1",
            f"{CLIENTS} client threads with keep-alive connections and the bearer token, cycling through "
            f"{len(TERMS)} terms (`{API}?q=<term>`: {', '.join(TERMS)}), then through {len(FILTERED)} filtered "
            f"queries (`?q=<term>&team=…` / `&task=…`); the facet counts are part of every answer, so the "
            f"filtered queries' full response time is reported as the facet-count figure; {s['warmup']:g} s "
            f"warm-up each, {s['seconds']:g} s measured each in {s['rounds']} round(s)",
            f"then {DISTINCT[size]:,} different queries, never repeated in the run (pieces of the catalog's names: "
            "word starts, model numbers, spans of 3–14 characters, drawn with a fixed seed), each client sending "
            f"its own share; {s['warmup']:g} s warm-up on a fifth of them, {s['seconds']:g} s measured",
            "MLflow peer: the same models/versions/aliases/tags bulk-inserted through MLflow's SQLAlchemy models "
            "(`SqlRegisteredModel`, `SqlModelVersion`, …) into a database created and migrated by "
            "`SqlAlchemyStore(db_uri)` (its `create_model_version` is too slow for 50,000 versions); SQLite cached as "
            f"`{mlflow_cache_path(size).relative_to(ROOT)}`; {WORKERS} processes × {THREADS} thread(s) calling "
            f"`store.search_model_versions(filter_string=\"name ILIKE '%<term>%'\", max_results={MAX_RESULTS})` "
            f"with the same {len(TERMS)} terms, {s['seconds']:g} s",
        ],
    )
    gen_notes = []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-search-") as tmp:
        var_dir = Path(tmp)
        portal_db, took = ensure_sqlite(size, "portal")
        gen_notes += [f"SQLite portal catalog generated now in {took:.0f} s (now cached)"] if took else []
        mlflow_db, took = ensure_sqlite(size, "mlflow")
        gen_notes += [f"SQLite MLflow registry generated now in {took:.0f} s (now cached)"] if took else []
        portal_copy, mlflow_copy = copy_sqlite(portal_db, var_dir), copy_sqlite(mlflow_db, var_dir)
        terms = _distinct_terms(portal_db, DISTINCT[size])
        plain, filtered, distinct, peer, count, alone = _run_backend(
            "SQLite", f"sqlite:///{portal_copy}", f"sqlite:///{mlflow_copy}", var_dir, s, terms
        )
        if count == 0:
            raise BenchError("the portal found nothing: the generated catalog is missing")
        _add(result, "SQLite", plain, filtered, distinct, peer, alone)
        why = pg_available()
        if why:
            result.notes.append(f"PostgreSQL skipped: 127.0.0.1:5432 did not answer ({why})")
        else:
            with pg_database() as portal_name, pg_database("_mlflow") as mlflow_name:
                env = django_env(pg_portal_url(portal_name), var_dir)
                started = time.perf_counter()
                run_json([PYTHON, "-m", "bench.catalog_gen", "portal", "--size", size], env)
                run_json(
                    [PYTHON, "-m", "bench.catalog_gen", "mlflow", "--size", size]
                    + ["--db-uri", pg_mlflow_uri(mlflow_name)],
                    env,
                )
                gen_notes.append(
                    f"PostgreSQL: both databases generated for this run in {time.perf_counter() - started:.0f} s"
                )
                plain, filtered, distinct, peer, _, alone = _run_backend(
                    "PostgreSQL", pg_portal_url(portal_name), pg_mlflow_uri(mlflow_name), var_dir, s, terms
                )
                _add(result, "PostgreSQL", plain, filtered, distinct, peer, alone)
    result.notes += gen_notes
    result.notes.append(
        f"targets: search p95 ≤ {SEARCH_TARGET_MS} ms, facet counts p95 ≤ {FACETS_TARGET_MS} ms, "
        f"at {GEN_SIZES['full']['versions']:,} versions"
    )
    result.notes.append(
        "the portal reads its search index (one narrow row per entity, text pre-lowered; pg_trgm on PostgreSQL). "
        "The two sides do not do the same work: the portal matches name, description, tags and team over "
        "projects, models, datasets and features and counts facets over every match; MLflow matches version "
        f"names only and returns one page of {MAX_RESULTS}. The load generator shares the machine's cores"
    )
    return result


def _worker(db_uri: str, threads: int, seconds: float, warmup: float) -> None:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri)

    def call(term: str) -> None:
        store.search_model_versions(filter_string=f"name ILIKE '%{term}%'", max_results=MAX_RESULTS)

    def run(k: int, until: float, out: list[float]) -> None:
        i = k
        while (started := time.perf_counter()) < until:
            call(TERMS[i % len(TERMS)])
            out.append(time.perf_counter() - started)
            i += 1

    def batch(duration: float) -> tuple[list[float], float]:
        outs: list[list[float]] = [[] for _ in range(threads)]
        until = time.perf_counter() + duration
        started = time.perf_counter()
        ts = [threading.Thread(target=run, args=(k, until, outs[k])) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return [x for o in outs for x in o], time.perf_counter() - started

    batch(warmup)
    print("ready", flush=True)
    sys.stdin.readline()
    latencies, elapsed = batch(seconds)
    print(json.dumps({"latencies": latencies, "seconds": elapsed}), flush=True)


def _selector(rounds: int) -> None:
    """Time the selector in-process, one call at a time, for the same queries (DATABASE_URL set by the parent)."""
    setup_django()
    from django.http import QueryDict

    from catalog.selectors import catalog_search

    out: dict[str, list[float]] = {"plain": [], "filtered": []}
    for key, queries in (("plain", TERMS), ("filtered", [f"{t}&{f}" for t, f in FILTERED])):
        params = [QueryDict(f"q={q}") for q in queries]
        for p in params:
            catalog_search(p)
        for _ in range(rounds):
            for p in params:
                started = time.perf_counter()
                catalog_search(p)
                out[key].append(time.perf_counter() - started)
    emit(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Worker: the MLflow peer of catalog_search (or the selector alone).")
    parser.add_argument("--selector", action="store_true", help="time catalog.selectors.catalog_search in-process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-uri")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    a = parser.parse_args()
    if a.selector:
        _selector(a.rounds)
        return
    _worker(a.db_uri, a.threads, a.seconds, a.warmup)


if __name__ == "__main__":
    main()
