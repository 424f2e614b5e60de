"""api_me: ``GET /api/v1/me/`` with a bearer token, 16 concurrent clients, against gunicorn.

Peer: the same server answering ``GET /api/v1/me/`` with a well-formed but
unknown token: the same middleware and DRF stack and the token lookup, ending
in a 401 without loading the user, its teams and roles or serializing them.
The load generator is 16 threads with one keep-alive connection each, talking
only to 127.0.0.1, for a fixed time.
"""

from __future__ import annotations

import http.client
import secrets
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import PYTHON, ROOT, BenchError, Metric, Ratio, Result, Size, django_env, manage, sqlite_url
from bench.http_load import Load, free_port
from bench.http_load import load as http_load

NAME = "api_me"
PATH = "/api/v1/me/"
CLIENTS = 16
WORKERS, THREADS = 2, 4
SIZES = {"smoke": {"seconds": 2.0, "warmup": 0.5, "rounds": 1}, "full": {"seconds": 10.0, "warmup": 2.0, "rounds": 2}}
GUNICORN = Path(PYTHON).parent / "gunicorn"


def _load(port: int, token: str, seconds: float) -> Load:
    """CLIENTS threads sending GET PATH until the deadline; latencies in seconds."""
    return http_load(port, [PATH], {"Authorization": f"Bearer {token}"}, seconds, clients=CLIENTS)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", PATH, headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer on 127.0.0.1:{port}:\n{log.read_text()[-3000:]}")


def _check(load: Load, expected: int, what: str) -> None:
    if set(load.statuses) != {expected} or load.requests == 0:
        raise BenchError(f"{what}: expected only HTTP {expected}, got {dict(load.statuses)}")


def measure(size: Size) -> Result:
    s = SIZES[size]
    gunicorn_cmd = f"gunicorn portal.wsgi -w {WORKERS} --threads {THREADS} -b 127.0.0.1:<free port>"
    result = Result(
        NAME,
        f"API `GET {PATH}` under {CLIENTS} concurrent clients",
        peer=f"the same server answering `GET {PATH}` with a well-formed unknown token (HTTP 401)",
        size=size,
        runs=[
            "fresh SQLite database: `manage.py migrate`, `manage.py seed_demo --quiet-logins`, "
            "`manage.py create_token --user eli --name bench`",
            f"`{gunicorn_cmd}` with DEBUG=false, ALLOWED_HOSTS=127.0.0.1",
            f"{CLIENTS} client threads with keep-alive connections; {s['warmup']:g} s warm-up, then "
            f"{s['seconds']:g} s with the valid token and {s['seconds']:g} s with the unknown one, "
            f"alternating in {s['rounds']} round(s)",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-api-me-") as tmp:
        var_dir = Path(tmp)
        env = django_env(sqlite_url(var_dir / "api.sqlite3"), var_dir, ALLOWED_HOSTS="127.0.0.1")
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("seed_demo", "--quiet-logins", env=env)
        token = manage("create_token", "--user", "eli", "--name", "bench", env=env).strip()
        unknown = "mlp_" + secrets.token_urlsafe(32)
        port = free_port()
        log = var_dir / "gunicorn.log"
        args = [str(GUNICORN), "portal.wsgi", "-w", str(WORKERS), "--threads", str(THREADS), "-b", f"127.0.0.1:{port}"]
        with log.open("wb") as log_file:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        try:
            _wait_ready(proc, port, log)
            _load(port, token, s["warmup"])
            _load(port, unknown, s["warmup"])
            me = peer = Load(0, 0.0, [], Counter())
            for _ in range(s["rounds"]):  # alternate, so both sides see the same background load
                me += _load(port, token, s["seconds"] / s["rounds"])
                peer += _load(port, unknown, s["seconds"] / s["rounds"])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    _check(me, 200, "valid token")
    _check(peer, 401, "unknown token")
    for label, load in (("valid token", me), ("unknown token, 401 (peer)", peer)):
        result.metrics += [
            Metric(f"{label}: throughput", load.rate, "requests/s"),
            Metric(f"{label}: p50 latency", load.percentile(50), "ms", digits=1),
            Metric(f"{label}: p95 latency", load.percentile(95), "ms", digits=1),
        ]
    result.ratios += [
        Ratio("throughput: valid token ÷ unknown token", me.rate / peer.rate),
        Ratio("p95 latency: valid token ÷ unknown token", me.percentile(95) / peer.percentile(95)),
    ]
    result.notes.append(
        f"gunicorn {WORKERS} workers × {THREADS} threads; the load generator runs on the same machine "
        f"and shares its CPU cores; {me.requests:,} + {peer.requests:,} requests measured"
    )
    return result
