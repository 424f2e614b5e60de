"""Bulk generator of a valid audit chain, cached in .bench-cache/ by its parameters.

Rows are built and hashed with ``portal.services.audit.canonical_json`` and
``event_hash`` exactly as ``audit_record_many`` does, then bulk-inserted with
raw ``executemany`` and the ``AuditHead`` row set to the last event. Generation
runs as a worker subprocess (``python -m bench.chaingen``) into a temporary
file that is renamed into the cache only when complete.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import CACHE_DIR, PYTHON, django_env, emit, run_json, setup_django, sqlite_url

VERSION = 1  # bump when the generated rows change, so old cache files are not reused
SEED = 20250101
BATCH = 50_000
ACTORS = [(None, "system"), (1, "admin"), (2, "dana"), (3, "eli"), (4, "rita"), (5, "raj"), (6, "finn")]
ACTIONS = [  # (action, object_type, has_before)
    ("team.create", "portal.team", False),
    ("team.update", "portal.team", True),
    ("membership.set", "portal.membership", True),
    ("role_grant.create", "portal.rolegrant", False),
    ("token.create", "portal.apitoken", False),
    ("token.revoke", "portal.apitoken", True),
    ("job.enqueue", "portal.job", False),
    ("job.reap", "portal.job", True),
]


def cache_path(events: int) -> Path:
    return CACHE_DIR / f"audit-n{events}-v{VERSION}-sqlite.sqlite3"


def ensure_chain(events: int) -> tuple[Path, float | None]:
    """The cached chain file, and the generation seconds if it had to be generated now."""
    path = cache_path(events)
    if path.exists():
        return path, None
    CACHE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-chaingen-", dir=CACHE_DIR) as tmp:
        partial = Path(tmp) / path.name
        answer = run_json(
            [PYTHON, "-m", "bench.chaingen", "--events", str(events)], django_env(sqlite_url(partial), Path(tmp))
        )
        partial.rename(path)
    return path, answer["seconds"]


def _rows(events: int) -> Iterator[dict[str, Any]]:
    """Chained rows, as ``audit_record_many`` builds them (before/after as canonical JSON text)."""
    from portal.services.audit import GENESIS_HASH, canonical_json, event_hash

    rnd = random.Random(SEED)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    for seq in range(1, events + 1):
        moment += timedelta(microseconds=rnd.randrange(1, 5_000_000))
        actor_id, actor = rnd.choice(ACTORS)
        action, object_type, has_before = rnd.choice(ACTIONS)
        object_id = str(rnd.randrange(1, 50_000))
        after = {"id": int(object_id), "name": f"{object_type.split('.')[1]}-{object_id}", "state": "active"}
        after.update(updated_by=actor, version=seq % 97, tags=["bench", action.split(".")[0]])
        before = {**after, "state": "pending", "version": max(0, seq % 97 - 1)} if has_before else None
        row = {
            "seq": seq,
            "timestamp": moment.isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": canonical_json(before),
            "after": canonical_json(after),
            "request_id": f"{rnd.getrandbits(128):032x}",
            "client_ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
            "prev_hash": prev,
        }
        row["hash"] = prev = event_hash(row)
        yield row


def _generate(events: int) -> dict[str, Any]:
    import time

    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from portal.models import AuditEvent, AuditHead
    from portal.services.audit import HASHED_FIELDS

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    connection.close()
    names = (*HASHED_FIELDS, "hash")
    columns = [AuditEvent._meta.get_field(name).column for name in names]
    insert = f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    db = sqlite3.connect(settings.DATABASES["default"]["NAME"])
    db.execute("PRAGMA synchronous=OFF")
    batch: list[tuple[Any, ...]] = []
    last: dict[str, Any] = {"seq": 0, "hash": "0" * 64}
    with db:
        for last in _rows(events):
            batch.append(tuple(last[name] for name in names))
            if len(batch) == BATCH:
                db.executemany(insert, batch)
                batch.clear()
        db.executemany(insert, batch)
        db.execute(f"UPDATE {AuditHead._meta.db_table} SET seq = ?, hash = ? WHERE id = 1", (last["seq"], last["hash"]))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"events": events, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description="Worker: write a valid audit chain into $DATABASE_URL (SQLite).")
    parser.add_argument("--events", type=int, required=True)
    emit(_generate(parser.parse_args().events))


if __name__ == "__main__":
    main()
