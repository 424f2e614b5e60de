from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """An append-only, hash-chained record of a write.

    ``hash`` is the SHA-256 of the canonical text of every other field (see
    ``portal.services.audit.canonical_text``), which includes ``prev_hash``:
    editing, deleting, inserting or reordering an event breaks the chain.
    """

    seq = models.BigIntegerField(unique=True)
    timestamp = models.CharField(max_length=32, help_text="UTC ISO 8601 with microseconds, hashed as stored.")
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    before = models.TextField(default="null", help_text="Canonical JSON.")
    after = models.TextField(default="null", help_text="Canonical JSON.")
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.action} {self.object_type}:{self.object_id}"

    @property
    def before_json(self):
        import json

        return json.loads(self.before)

    @property
    def after_json(self):
        import json

        return json.loads(self.after)


class AuditHead(models.Model):
    """One row: the chain's newest sequence number and hash; locked to append."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement "the chain had seq N with hash H at time T"."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    timestamp = models.CharField(max_length=32)
    public_key = models.CharField(max_length=64, help_text="Ed25519 public key, hex.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, hex.")

    class Meta:
        ordering = ["seq", "id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq}"

    def message(self) -> bytes:
        return f"portal-audit-checkpoint:{self.seq}:{self.hash}:{self.timestamp}".encode()


class AuditExportDigest(models.Model):
    """What an export contained, signed (CloudTrail-style): the file's SHA-256, its first and last events, the
    previous digest's hash. ``payload`` is the exact signed text; ``signature`` is Ed25519 over it, base64."""

    payload = models.TextField()
    payload_sha256 = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=100)
    public_key_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"export digest {self.payload_sha256[:12]}"
