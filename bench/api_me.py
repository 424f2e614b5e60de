"""api_me: ``GET /api/v1/me/`` with a bearer token, 16 concurrent clients, against gunicorn.

Peer: the same server answering ``GET /api/v1/me/`` with a well-formed but
unknown token: the same middleware and DRF stack and the token lookup, ending
in a 401 without loading the user, its teams and roles or serializing them.
The load generator is 16 threads with one keep-alive connection each, talking
only to 127.0.0.1, for a fixed time.
"""

from __future__ import annotations

import secrets
import tempfile
from collections import Counter
from pathlib import Path

from bench.catalog_common import GUNICORN_CMD, WORKERS, gunicorn
from bench.common import BenchError, Metric, Ratio, Result, Size, django_env, manage, sqlite_url
from bench.http_load import Load
from bench.http_load import load as http_load

NAME = "api_me"
PATH = "/api/v1/me/"
CLIENTS = 16
SIZES = {"smoke": {"seconds": 2.0, "warmup": 0.5, "rounds": 1}, "full": {"seconds": 10.0, "warmup": 2.0, "rounds": 2}}


def _load(port: int, token: str, seconds: float) -> Load:
    """CLIENTS threads sending GET PATH until the deadline; latencies in seconds."""
    return http_load(port, [PATH], {"Authorization": f"Bearer {token}"}, seconds, clients=CLIENTS)


def _check(load: Load, expected: int, what: str) -> None:
    if set(load.statuses) != {expected} or load.requests == 0:
        raise BenchError(f"{what}: expected only HTTP {expected}, got {dict(load.statuses)}")


def measure(size: Size) -> Result:
    s = SIZES[size]
    result = Result(
        NAME,
        f"API `GET {PATH}` under {CLIENTS} concurrent clients",
        peer=f"the same server answering `GET {PATH}` with a well-formed unknown token (HTTP 401)",
        size=size,
        runs=[
            "fresh SQLite database: `manage.py migrate`, `manage.py seed_demo --quiet-logins`, "
            "`manage.py create_token --user eli --name bench`",
            f"`{GUNICORN_CMD}` with DEBUG=false, ALLOWED_HOSTS=127.0.0.1",
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
        with gunicorn(env, var_dir / "gunicorn.log") as port:
            _load(port, token, s["warmup"])
            _load(port, unknown, s["warmup"])
            me = peer = Load(0, 0.0, [], Counter())
            for _ in range(s["rounds"]):  # alternate, so both sides see the same background load
                me += _load(port, token, s["seconds"] / s["rounds"])
                peer += _load(port, unknown, s["seconds"] / s["rounds"])
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
        f"gunicorn, {WORKERS} synchronous worker processes; the load generator runs on the same machine "
        f"and shares its CPU cores; {me.requests:,} + {peer.requests:,} requests measured"
    )
    return result
