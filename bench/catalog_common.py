"""Shared pieces of the ``catalog_*`` benchmarks: gunicorn, a load generator, PostgreSQL databases."""

from __future__ import annotations

import http.client
import os
import runpy
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import PYTHON, ROOT, BenchError
from bench.http_load import CLIENTS, Load, free_port, load  # noqa: F401  (re-exported)

# The portal's own server settings (gunicorn.conf.py), as a deployment would run them.
_CONF = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
WORKERS, THREADS = _CONF["workers"], 1  # synchronous workers: one request at a time each
GUNICORN = Path(PYTHON).parent / "gunicorn"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
GUNICORN_CMD = (
    f"gunicorn portal.wsgi -c gunicorn.conf.py -b 127.0.0.1:<free port> ({WORKERS} synchronous worker processes)"
)


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[int]:
    """A running gunicorn on a free port; yields the port once it answers."""
    port = free_port()
    args = [str(GUNICORN), "portal.wsgi", "-c", str(ROOT / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}"]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise BenchError(f"gunicorn exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/me/", headers={"Host": "127.0.0.1"})
                if conn.getresponse().status == 401:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise BenchError(f"gunicorn did not answer on 127.0.0.1:{port}:\n{log.read_text()[-3000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check(result: Load, what: str) -> None:
    if set(result.statuses) != {200} or result.requests == 0:
        raise BenchError(f"{what}: expected only HTTP 200, got {dict(result.statuses)}")


def pg_available() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "skip PostgreSQL"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


@contextmanager
def pg_database(suffix: str = "") -> Iterator[str]:
    """A fresh database ``bench_catalog_<pid><suffix>``, dropped afterwards; yields its name."""
    import psycopg

    name = f"bench_catalog_{os.getpid()}{suffix}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_portal_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def pg_mlflow_uri(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
