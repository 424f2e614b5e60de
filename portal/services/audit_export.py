"""Audit exports an auditor can verify offline, in the spirit of CloudTrail's log-file integrity validation.

An export (JSON Lines or CSV, optionally a time range) comes with a signed
digest: the export's SHA-256, its first and last events (sequence numbers and
hashes), the hash of the previous digest, signed with the audit key (Ed25519).
``payload`` is the exact text that was signed, so ``openssl pkeyutl -verify``
checks it with no portal code (docs/audit.md), and
``manage.py audit_verify --export FILE --digest DIGEST`` checks the chain inside
the file as well.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.db import connection, transaction

from portal.models import AuditEvent, AuditExportDigest
from portal.services.audit import (
    GENESIS_HASH,
    HASHED_FIELDS,
    _canonical,
    _encode_string,
    _load_private_key,
    audit_record,
    canonical_json,
    utc_timestamp,
)

FORMATS = ("jsonl", "csv")
# Sorted-key order of the canonical text, then the stored hash (as portal.services.audit reads them).
_COLUMNS = (
    "action", "actor", "actor_id", "after", "before", "client_ip", "object_id", "object_type", "prev_hash",
    "request_id", "seq", "timestamp", "hash",
)  # fmt: skip
CSV_COLUMNS = (*HASHED_FIELDS, "hash")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _rows(since: str | None, until: str | None) -> Iterator[tuple]:
    where, params = [], []
    if since:
        where.append("timestamp >= %s")
        params.append(since)
    if until:
        where.append("timestamp < %s")
        params.append(until)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM {AuditEvent._meta.db_table}"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(5000):
            yield from rows


def _jsonl(row: tuple) -> str:
    text = _canonical(*row[:12])
    cut = text.index(',"object_id":')  # "hash" sorts between "client_ip" and "object_id"
    return f'{text[:cut]},"hash":{_encode_string(row[12])}{text[cut:]}\n'


def csv_cell(value) -> str:
    """A spreadsheet must not run a cell as a formula: prefix such cells with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv(row: tuple) -> list[str]:
    by_name = dict(zip(_COLUMNS, row, strict=True))
    return [csv_cell(by_name[name]) for name in CSV_COLUMNS]


@dataclass
class Export:
    file: IO[bytes]
    digest: AuditExportDigest
    filename: str
    content_type: str


def normalise_bound(value: str | None, *, end: bool = False) -> str | None:
    """``2026-11-01`` or a full ISO timestamp → the stored timestamp format (UTC), for string comparison."""
    from datetime import UTC, datetime, timedelta

    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 date or time.") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value) == 10:  # a date as the end bound includes that whole day
        moment += timedelta(days=1)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_export_create(*, actor, fmt: str = "jsonl", since: str | None = None, until: str | None = None) -> Export:
    """Write the export to a temporary file while hashing it, then sign and store its digest."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    lo, hi = normalise_bound(since), normalise_bound(until, end=True)
    sha = hashlib.sha256()
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    first = last = None
    count = 0

    def write(data: bytes) -> None:
        sha.update(data)
        out.write(data)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(CSV_COLUMNS)
    for row in _rows(lo, hi):
        if first is None:
            first = row
        last = row
        count += 1
        if fmt == "jsonl":
            write(_jsonl(row).encode())
        else:
            writer.writerow(_csv(row))
            if buffer.tell() > 65536:
                write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
    if fmt == "csv":
        write(buffer.getvalue().encode())
    out.seek(0)
    by_name = lambda row: dict(zip(_COLUMNS, row, strict=True)) if row else {}  # noqa: E731
    f, z = by_name(first), by_name(last)
    with transaction.atomic():
        previous = AuditExportDigest.objects.select_for_update().order_by("-id").first()
        payload = canonical_json(
            {
                "format": fmt,
                "from": lo,
                "to": hi,
                "events": count,
                "first_seq": f.get("seq"),
                "last_seq": z.get("seq"),
                "first_hash": f.get("hash"),
                "last_hash": z.get("hash"),
                "first_prev_hash": f.get("prev_hash"),
                "export_sha256": sha.hexdigest(),
                "previous_digest_sha256": previous.payload_sha256 if previous else None,
                "created_at": utc_timestamp(),
            }
        )
        digest = _sign(payload)
        audit_record(
            action="audit.export",
            obj=digest,
            after={"format": fmt, "from": lo, "to": hi, "events": count, "export_sha256": sha.hexdigest()},
        )
    stamp = json.loads(payload)["created_at"][:19].replace(":", "").replace("-", "")
    return Export(
        file=out,
        digest=digest,
        filename=f"audit-{stamp}.{fmt}",
        content_type="application/x-ndjson" if fmt == "jsonl" else "text/csv",
    )


def _sign(payload: str) -> AuditExportDigest:
    from cryptography.hazmat.primitives import serialization

    key = _load_private_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return AuditExportDigest.objects.create(
        payload=payload,
        payload_sha256=hashlib.sha256(payload.encode()).hexdigest(),
        signature=base64.b64encode(key.sign(payload.encode())).decode(),
        public_key_pem=pem.decode(),
    )


def digest_document(digest: AuditExportDigest) -> dict:
    return {
        "id": digest.pk,
        "payload": digest.payload,
        "payload_sha256": digest.payload_sha256,
        "signature": digest.signature,
        "public_key_pem": digest.public_key_pem,
        "digest": json.loads(digest.payload),
    }


# --- Verifying an export offline ---------------------------------------------------------------------------------


@dataclass
class ExportCheck:
    ok: bool
    events: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify_export(
    path: Path, digest: dict | None = None, *, trusted_public_key_pem: bytes | None = None
) -> ExportCheck:
    """Check a JSON Lines export's chain line by line, and, given its digest, the file hash and the signature."""
    check = ExportCheck(ok=True)
    data = path.read_bytes()
    if digest is not None:
        _check_digest(check, data, digest, trusted_public_key_pem)
    if path.suffix == ".csv" or data[:4] == b"seq,":
        check.notes.append("CSV export: the digest covers it; the chain itself is checked in JSON Lines exports.")
        return check
    previous_hash, previous_seq = None, None
    for number, line in enumerate(data.decode().splitlines(), start=1):
        try:
            event = json.loads(line)
            stored = event.pop("hash")
        except (ValueError, KeyError):
            return _bad(check, f"line {number} is not an exported audit event")
        seq = event.get("seq")
        if hashlib.sha256(canonical_json(event).encode()).hexdigest() != stored:
            return _bad(check, f"event #{seq} (line {number}) does not match its hash: it was edited")
        if previous_hash is not None and event.get("prev_hash") != previous_hash:
            return _bad(
                check, f"event #{seq} (line {number}) does not follow event #{previous_seq}: missing or reordered"
            )
        if previous_seq is not None and seq != previous_seq + 1:
            return _bad(check, f"event #{seq} (line {number}) follows #{previous_seq}: events are missing")
        if number == 1 and seq == 1 and event.get("prev_hash") != GENESIS_HASH:
            return _bad(check, "event #1 does not start from the genesis hash")
        previous_hash, previous_seq = stored, seq
        check.events += 1
    if digest is not None:
        signed = json.loads(digest["payload"])
        if check.events != signed["events"] or (check.events and previous_hash != signed["last_hash"]):
            return _bad(check, "the export does not end where its digest says: truncated")
    return check


def _bad(check: ExportCheck, problem: str) -> ExportCheck:
    check.ok = False
    check.problems.append(problem)
    return check


def _check_digest(check: ExportCheck, data: bytes, digest: dict, trusted: bytes | None) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    signed = json.loads(digest["payload"])
    if hashlib.sha256(data).hexdigest() != signed["export_sha256"]:
        _bad(check, "the file's SHA-256 is not the one in its digest: the file was changed")
    public = load_pem_public_key(trusted or digest["public_key_pem"].encode())
    try:
        public.verify(base64.b64decode(digest["signature"]), digest["payload"].encode())
    except InvalidSignature:
        _bad(check, "the digest's signature does not verify: the digest was changed or signed by another key")
    if trusted is None:
        check.notes.append("Signature checked against the key inside the digest; pass the published key to pin it.")
