"""catalog_model_page: the HTML model page and its versions tab for a model with 10,000 versions, against gunicorn.

Signed in through the session: the allauth login form at ``/accounts/login/``
is posted with its CSRF token by ``requests.Session`` (user admin, password
``DEMO_PASSWORD``, default ``demo``); the load generator then sends that
session cookie. Peer: the same two pages for a model with one version, same
server, same clients.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from bench.catalog_common import CLIENTS, GUNICORN_CMD, check, gunicorn, load
from bench.catalog_gen import BIG_MODEL, SMALL_MODEL, copy_sqlite, ensure_sqlite, portal_cache_path
from bench.catalog_gen import SIZES as GEN_SIZES
from bench.common import ROOT, Metric, Ratio, Result, Size, django_env, manage
from bench.http_load import Load, session_login

NAME = "catalog_model_page"
TARGET_MS = 100
SIZES = {"smoke": {"seconds": 1.0, "warmup": 0.5, "rounds": 1}, "full": {"seconds": 6.0, "warmup": 1.5, "rounds": 2}}
PAGES = [("model page", "/catalog/models/{}/"), ("versions tab", "/catalog/models/{}/versions/")]


def measure(size: Size) -> Result:
    import os

    s, g = SIZES[size], GEN_SIZES[size]
    result = Result(
        NAME,
        f"Model page and versions tab of a model with {g['big']:,} versions, {CLIENTS} concurrent clients",
        peer="the same two pages for a model with 1 version, same server and clients",
        size=size,
        runs=[
            f"the SQLite catalog of `catalog_search` (`{portal_cache_path(size).relative_to(ROOT)}`: "
            f"{g['models']:,} models, {g['versions']:,} versions), copied to a temporary directory; "
            f"`{BIG_MODEL}` has {g['big']:,} versions, `{SMALL_MODEL}` has 1",
            f"`{GUNICORN_CMD}` with DEBUG=false, ALLOWED_HOSTS=127.0.0.1",
            "sign-in: `requests.Session` GETs `/accounts/login/`, posts the form with its CSRF token "
            "(admin / DEMO_PASSWORD); the session cookie is then sent by every client",
            f"{CLIENTS} client threads with keep-alive connections GET one page at a time: "
            + ", ".join(f"`{p.format('<model>')}`" for _, p in PAGES)
            + f"; {s['warmup']:g} s warm-up, {s['seconds']:g} s measured per page and model in "
            f"{s['rounds']} round(s), the big and the small model alternating",
        ],
    )
    password = os.environ.get("DEMO_PASSWORD", "demo")
    loads: dict[tuple[str, str], Load] = {}
    with tempfile.TemporaryDirectory(prefix="bench-catalog-page-") as tmp:
        var_dir = Path(tmp)
        cached, took = ensure_sqlite(size, "portal")
        if took:
            result.notes.append(f"catalog generated now in {took:.0f} s (now cached)")
        db = copy_sqlite(cached, var_dir)
        env = django_env(f"sqlite:///{db}", var_dir, ALLOWED_HOSTS="127.0.0.1", DEMO_PASSWORD=password)
        manage("migrate", "--verbosity", "0", env=env)  # a cached catalog may predate the latest migrations
        with gunicorn(env, var_dir / "gunicorn.log") as port:
            headers = {"Cookie": session_login(port, "admin", password)}
            for model in (BIG_MODEL, SMALL_MODEL):
                for _, path in PAGES:
                    load(port, [path.format(model)], headers, s["warmup"] / 2)
            for _ in range(s["rounds"]):
                for label, path in PAGES:
                    for model in (BIG_MODEL, SMALL_MODEL):
                        key = (label, model)
                        got = load(port, [path.format(model)], headers, s["seconds"] / s["rounds"])
                        loads[key] = loads.get(key, Load(0, 0.0, [], Counter())) + got
    for (label, model), got in loads.items():
        check(got, f"{label} of {model}")
    for label, _ in PAGES:
        big, small = loads[(label, BIG_MODEL)], loads[(label, SMALL_MODEL)]
        result.metrics += [
            Metric(f"{label}, {g['big']:,} versions: p95", big.percentile(95), "ms", f"<= {TARGET_MS}", digits=1),
            Metric(f"{label}, {g['big']:,} versions: p50", big.percentile(50), "ms", digits=1),
            Metric(f"{label}, 1 version (peer): p95", small.percentile(95), "ms", digits=1),
            Metric(f"{label}, 1 version (peer): p50", small.percentile(50), "ms", digits=1),
        ]
        result.ratios.append(
            Ratio(f"{label} p95: {g['big']:,} versions ÷ 1 version", big.percentile(95) / small.percentile(95))
        )
    result.notes.append(
        f"the {TARGET_MS} ms target is for {GEN_SIZES['full']['big']:,} versions; SQLite only (the PostgreSQL "
        "run is in `catalog_search`); the load generator shares the machine's cores; "
        f"{sum(x.requests for x in loads.values()):,} requests measured"
    )
    return result
