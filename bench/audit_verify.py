"""audit_verify: ``python manage.py audit_verify`` over a generated chain.

Peer: the same chain exported with ``manage.py audit_export -o chain.jsonl``,
hashed with ``sha256sum chain.jsonl`` (reading and hashing the same data once,
with no Python and no database in the loop).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from bench.chaingen import cache_path, ensure_chain
from bench.common import ROOT, BenchError, Metric, Ratio, Result, Size, django_env, manage, run, sqlite_url, stopwatch

NAME = "audit_verify"
TARGET_SECONDS = 15  # at 1,000,000 events
SIZES = {"smoke": 20_000, "full": 1_000_000}


def measure(size: Size) -> Result:
    events = SIZES[size]
    chain, generated = ensure_chain(events)
    result = Result(
        NAME,
        f"Audit chain verification ({events:,} events)",
        peer="`sha256sum` of the same chain exported by `manage.py audit_export` (JSON Lines)",
        size=size,
        runs=[
            f"`DATABASE_URL=sqlite:///{cache_path(events).relative_to(ROOT)} python manage.py audit_verify` "
            "(wall clock, process start included)",
            "`python manage.py audit_export -o <tmp>/chain.jsonl` then `sha256sum <tmp>/chain.jsonl`",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-audit-verify-") as tmp:
        var_dir = Path(tmp)
        env = django_env(sqlite_url(chain), var_dir)
        with stopwatch() as wall:
            out = manage("audit_verify", env=env)
        found = re.search(r"OK: (\d+) events.*\(([\d.]+) s\)", out)
        if not found or int(found[1]) != events:
            raise BenchError(f"audit_verify did not verify {events} events: {out.strip()}")
        inside = float(found[2])
        export = var_dir / "chain.jsonl"
        with stopwatch() as exported:
            manage("audit_export", "-o", str(export), env=env)
        megabytes = export.stat().st_size / 1e6
        run(["sha256sum", str(export)], env)  # once to have the file in the page cache for both sides
        with stopwatch() as hashed:
            run(["sha256sum", str(export)], env)
    result.metrics += [
        Metric("`manage.py audit_verify`, wall clock", wall[0], "s", f"<= {TARGET_SECONDS}", digits=2),
        Metric("`audit_verify()` itself (as printed by the command)", inside, "s", digits=2),
        Metric("verification rate", events / inside, "events/s"),
        Metric(f"`manage.py audit_export` ({megabytes:,.0f} MB of JSON Lines), wall clock", exported[0], "s", digits=2),
        Metric("`sha256sum` of the export (peer)", hashed[0], "s", digits=2),
    ]
    result.ratios.append(Ratio("`manage.py audit_verify` ÷ `sha256sum`", wall[0] / hashed[0]))
    result.notes.append(f"the {TARGET_SECONDS} s target is for {SIZES['full']:,} events")
    if generated is not None:
        result.notes.append(f"the chain was generated for this run in {generated:.0f} s (now cached)")
    else:
        result.notes.append(f"chain from the cache: `{cache_path(events).relative_to(ROOT)}`")
    return result
