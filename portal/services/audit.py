"""The audit chain: append events in the writer's transaction, checkpoint, verify.

Each event's hash is the SHA-256 of its canonical text, which includes the
previous event's hash, so the events form a chain. Sequence numbers are
assigned under a lock on the single ``AuditHead`` row, so they have no gaps.
Signed checkpoints catch a truncated tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction

from portal.context import current
from portal.models import AuditCheckpoint, AuditEvent, AuditHead

# json.dumps(str, ensure_ascii=False) for one string, C-accelerated
_encode_string = json.encoder.encode_basestring

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "timestamp",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "client_ip",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_text(row: dict[str, Any]) -> str:
    """The text that is hashed: ``canonical_json`` of every field but ``hash``.

    ``before``/``after`` are stored as canonical JSON text already, so the text is
    assembled directly (keys in sorted order) instead of parsing and re-dumping them:
    the same bytes, several times faster, which is what keeps ``audit_verify`` quick.
    A test checks it against ``canonical_json`` of the parsed event.
    """
    return _canonical(
        row["action"],
        row["actor"],
        row["actor_id"],
        row["after"],
        row["before"],
        row["client_ip"],
        row["object_id"],
        row["object_type"],
        row["prev_hash"],
        row["request_id"],
        row["seq"],
        row["timestamp"],
    )


def _canonical(
    action, actor, actor_id, after, before, client_ip, object_id, object_type, prev_hash, request_id, seq, timestamp
) -> str:
    s = _encode_string
    return (
        f'{{"action":{s(action)},"actor":{s(actor)},"actor_id":{"null" if actor_id is None else int(actor_id)},'
        f'"after":{after},"before":{before},"client_ip":{s(client_ip)},"object_id":{s(object_id)},'
        f'"object_type":{s(object_type)},"prev_hash":{s(prev_hash)},"request_id":{s(request_id)},'
        f'"seq":{int(seq)},"timestamp":{s(timestamp)}}}'
    )


def event_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_text(row).encode("utf-8")).hexdigest()


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def snapshot(instance: models.Model | None, fields: Iterable[str] | None = None) -> dict[str, Any] | None:
    """A JSON-ready dict of a model instance's concrete fields, for before/after."""
    if instance is None:
        return None
    data: dict[str, Any] = {}
    for f in instance._meta.concrete_fields:
        if fields is not None and f.name not in fields:
            continue
        value = getattr(instance, f.attname)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif not isinstance(value, str | int | float | bool | list | dict | type(None)):
            value = str(value)
        data[f.name] = value
    return data


@dataclass
class PendingEvent:
    action: str
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None


def _describe(obj: models.Model | None, object_type: str | None, object_id: Any) -> tuple[str, str]:
    if obj is not None:
        return object_type or obj._meta.label_lower, str(obj.pk if object_id is None else object_id)
    return object_type or "", "" if object_id is None else str(object_id)


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction."""
    otype, oid = _describe(obj, object_type, object_id)
    return audit_record_many([PendingEvent(action, otype, oid, before, after)])[0]


def audit_record_many(events: list[PendingEvent]) -> list[AuditEvent]:
    """Append events in one batch: one locking UPDATE, one INSERT, one head update.

    Raw SQL on purpose: this runs inside every audited write, and the ORM's per-call
    overhead was most of its cost (see docs/benchmarks.md, audit_append).
    """
    if not events:
        return []
    ctx = current()
    head_table = connection.ops.quote_name(AuditHead._meta.db_table)
    event_table = connection.ops.quote_name(AuditEvent._meta.db_table)
    # No savepoint: the events belong to the caller's transaction and fail with it.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # The UPDATE takes the row lock (PostgreSQL) / write lock (SQLite) before we read.
        lock = f"UPDATE {head_table} SET seq = seq + %s WHERE id = 1 RETURNING seq, hash"
        cursor.execute(lock, [len(events)])
        head = cursor.fetchone()
        if head is None:  # the migration creates the head; a flushed database (tests) may lack it
            cursor.execute(f"INSERT INTO {head_table} (id, seq, hash) VALUES (1, 0, %s)", [GENESIS_HASH])
            cursor.execute(lock, [len(events)])
            head = cursor.fetchone()
        seq, prev = head[0] - len(events), head[1]
        timestamp = utc_timestamp()
        rows: list[tuple] = []
        created: list[AuditEvent] = []
        for pending in events:
            seq += 1
            before, after = canonical_json(pending.before), canonical_json(pending.after)
            text = _canonical(
                pending.action,
                ctx.actor,
                ctx.actor_id,
                after,
                before,
                ctx.client_ip,
                pending.object_id,
                pending.object_type,
                prev,
                ctx.request_id,
                seq,
                timestamp,
            )
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            values = (
                seq,
                timestamp,
                ctx.actor_id,
                ctx.actor,
                pending.action,
                pending.object_type,
                pending.object_id,
                before,
                after,
                ctx.request_id,
                ctx.client_ip,
                prev,
                digest,
            )
            rows.append(values)
            created.append(AuditEvent(**dict(zip(_INSERT_COLUMNS, values, strict=True))))
            prev = digest
        placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
        cursor.executemany(f"INSERT INTO {event_table} ({', '.join(_INSERT_COLUMNS)}) VALUES ({placeholders})", rows)
        cursor.execute(f"UPDATE {head_table} SET hash = %s WHERE id = 1", [prev])
    return created


_INSERT_COLUMNS = (*HASHED_FIELDS, "hash")


# --- Signing key and checkpoints ------------------------------------------------


def _load_private_key(path: Path | None = None):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path = Path(path or settings.AUDIT_SIGNING_KEY_FILE)
    try:
        return load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise AuditKeyMissing(
            f"No audit signing key at {path}; create one with `python manage.py audit_keygen`."
        ) from exc


class AuditKeyMissing(RuntimeError):
    pass


def audit_signing_key_generate(*, path: Path | None = None, overwrite: bool = False) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path or settings.AUDIT_SIGNING_KEY_FILE)
    if path.exists() and not overwrite:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(pem)
    return path


def _public_hex(private_key) -> str:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def audit_checkpoint_create(*, key_path: Path | None = None) -> AuditCheckpoint | None:
    """Sign the current head; returns None when nothing changed since the last checkpoint."""
    key = _load_private_key(key_path)
    with transaction.atomic():
        head = AuditHead.objects.get(pk=1)
        last = AuditCheckpoint.objects.order_by("-seq", "-id").first()
        if head.seq == 0 or (last and last.seq == head.seq):
            return None
        checkpoint = AuditCheckpoint(
            seq=head.seq, hash=head.hash, timestamp=utc_timestamp(), public_key=_public_hex(key)
        )
        checkpoint.signature = key.sign(checkpoint.message()).hex()
        checkpoint.save()
    return checkpoint


# --- Verification ---------------------------------------------------------------


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    last_seq: int
    first_bad_seq: int | None = None
    reason: str = ""
    checkpoints: int = 0
    warnings: list[str] = field(default_factory=list)


def _rows(chunk_size: int = 20000) -> Iterator[tuple]:
    """Events in order, as tuples in _VERIFY_COLUMNS order (sorted keys, then hash)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_VERIFY_COLUMNS)} FROM {AuditEvent._meta.db_table} ORDER BY seq")
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


# Columns in the sorted-key order of _canonical, then the stored hash.
_VERIFY_COLUMNS = (
    "action",
    "actor",
    "actor_id",
    "after",
    "before",
    "client_ip",
    "object_id",
    "object_type",
    "prev_hash",
    "request_id",
    "seq",
    "timestamp",
    "hash",
)


@dataclass
class _Segment:
    """What one pass over events lo < seq <= hi found."""

    first_seq: int | None = None
    first_prev: str = ""
    last_seq: int = 0
    last_hash: str = ""
    checked: int = 0
    bad_seq: int | None = None
    reason: str = ""
    at_checkpoints: dict[int, str] = field(default_factory=dict)


def _verify_segment(lo: int, hi: int | None, wanted: frozenset[int]) -> _Segment:
    sql = f"SELECT {', '.join(_VERIFY_COLUMNS)} FROM {AuditEvent._meta.db_table} WHERE seq > %s"
    params: list[int] = [lo]
    if hi is not None:
        sql += " AND seq <= %s"
        params.append(hi)
    seg, expected, prev = _Segment(), lo + 1, None
    sha256, canonical = hashlib.sha256, _canonical
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql + " ORDER BY seq", params)
        while rows := cursor.fetchmany(20000):
            for row in rows:
                seq = row[10]
                if seq != expected:
                    missing = f"#{expected}" if seq == expected + 1 else f"#{expected}–#{seq - 1}"
                    seg.bad_seq, seg.reason = expected, f"event {missing} is missing (deleted)"
                    return seg
                if sha256(canonical(*row[:12]).encode()).hexdigest() != row[12]:
                    seg.bad_seq, seg.reason = seq, f"event #{seq} does not match its hash (edited)"
                    return seg
                if prev is None:
                    seg.first_seq, seg.first_prev = seq, row[8]
                elif row[8] != prev:
                    seg.bad_seq = seq
                    seg.reason = f"event #{seq} does not link to event #{seq - 1} (inserted, replaced or reordered)"
                    return seg
                if seq in wanted:
                    seg.at_checkpoints[seq] = row[12]
                prev = seg.last_hash = row[12]
                seg.last_seq = seq
                seg.checked += 1
                expected += 1
    if hi is not None and seg.last_seq != hi:
        seg.bad_seq, seg.reason = seg.last_seq + 1, f"event #{seg.last_seq + 1} is missing (deleted)"
    return seg


def _verify_segment_in_child(args: tuple) -> _Segment:
    connection.close()  # a forked child must not share the parent's connection
    return _verify_segment(*args)


def audit_verify(*, key_path: Path | None = None, workers: int = 1, min_parallel: int = 100_000) -> VerifyResult:
    """Walk the chain and name the first bad event, if any.

    ``workers`` > 1 checks ranges of the chain in forked processes (for the command line,
    not for threaded servers); the ranges are then joined and their seams checked.
    """
    checkpoints = list(AuditCheckpoint.objects.order_by("seq", "id"))
    wanted = frozenset(cp.seq for cp in checkpoints)
    top = AuditEvent.objects.aggregate(top=models.Max("seq"))["top"] or 0
    bounds = [0] if workers <= 1 or top < min_parallel else [top * i // workers for i in range(workers)]
    ranges = [(lo, bounds[i + 1] if i + 1 < len(bounds) else None, wanted) for i, lo in enumerate(bounds)]
    if len(ranges) == 1:
        segments = [_verify_segment(*ranges[0])]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from django.db import connections

        connections.close_all()
        with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("fork")) as pool:
            segments = list(pool.map(_verify_segment_in_child, ranges))
    checked, prev, last_seq = 0, GENESIS_HASH, 0
    seen: dict[int, str] = {}
    for seg in segments:
        if seg.first_seq is not None and seg.first_prev != prev:
            return VerifyResult(
                False,
                checked,
                seg.first_seq,
                seg.first_seq,
                f"event #{seg.first_seq} does not link to event #{seg.first_seq - 1} (inserted, replaced or reordered)",
            )
        checked += seg.checked
        if seg.bad_seq is not None:
            return VerifyResult(False, checked, seg.last_seq, seg.bad_seq, seg.reason)
        if seg.first_seq is not None:
            prev, last_seq = seg.last_hash, seg.last_seq
        seen.update(seg.at_checkpoints)
    result = VerifyResult(True, checked, last_seq, checkpoints=len(checkpoints))
    return _verify_tail(result, prev, checkpoints, seen, key_path)


def _trusted_public_key(key_path: Path | None, result: VerifyResult):
    try:
        return _load_private_key(key_path).public_key()
    except AuditKeyMissing:
        result.warnings.append("no signing key available: checkpoints checked against their own public key")
        return None


def _verify_tail(result, last_hash, checkpoints, seen, key_path) -> VerifyResult:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    trusted = _trusted_public_key(key_path, result)
    for cp in checkpoints:
        public = trusted or Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key))
        try:
            public.verify(bytes.fromhex(cp.signature), cp.message())
        except (InvalidSignature, ValueError):
            return _fail(result, cp.seq, f"checkpoint at event #{cp.seq} has an invalid signature")
        if cp.seq > result.last_seq:
            return _fail(
                result,
                result.last_seq + 1,
                f"the chain ends at event #{result.last_seq} but a signed checkpoint covers #{cp.seq} "
                "(newest events deleted)",
            )
        if seen.get(cp.seq) != cp.hash:
            return _fail(result, cp.seq, f"event #{cp.seq} differs from the signed checkpoint")
    head = AuditHead.objects.filter(pk=1).first()
    if head is None and result.last_seq:
        return _fail(result, result.last_seq, "the chain's head record is missing")
    if head and head.seq != result.last_seq:
        if head.seq > result.last_seq:
            return _fail(
                result,
                result.last_seq + 1,
                f"the chain ends at event #{result.last_seq} but its head records #{head.seq} (newest events deleted)",
            )
        return _fail(result, head.seq + 1, f"events after the recorded head #{head.seq} (appended outside the chain)")
    if head and head.seq and head.hash != last_hash:
        return _fail(result, head.seq, f"event #{head.seq} differs from the recorded head")
    return result


def _fail(result: VerifyResult, seq: int, reason: str) -> VerifyResult:
    result.ok = False
    result.first_bad_seq = seq
    result.reason = reason
    return result


def audit_export_lines() -> Iterator[str]:
    """The chain as JSON Lines: each event's canonical text with its ``hash`` added, in order.

    Dropping ``"hash"`` from a line gives back exactly the text that was hashed.
    """
    s = _encode_string
    for row in _rows():
        text = _canonical(*row[:12])
        # "hash" sorts between "client_ip" and "object_id"
        cut = text.index(',"object_id":')
        yield f'{text[:cut]},"hash":{s(row[12])}{text[cut:]}\n'
