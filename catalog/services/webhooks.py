"""MLflow model-registry webhooks: verify the HMAC signature, then trigger an incremental sync."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from django.conf import settings
from django.core.cache import cache

from portal.models import Job, JobStatus
from portal.services.jobs import job_enqueue

MAX_SKEW_SECONDS = 300
WEBHOOK_PATH = "/api/v1/catalog/webhooks/mlflow/"
WEBHOOK_NAME = "ml-platform-portal"


class WebhookRejected(Exception):
    pass


def verify_mlflow_signature(*, secret: str, body: bytes, signature: str, timestamp: str, delivery_id: str) -> None:
    """MLflow signs ``<delivery id>.<unix timestamp>.<body>`` with HMAC-SHA256: ``v1,<base64>``."""
    if not secret:
        raise WebhookRejected("Webhooks are not configured (set MLFLOW_WEBHOOK_SECRET).")
    if not (signature and timestamp and delivery_id):
        raise WebhookRejected("Missing X-MLflow-Signature, X-MLflow-Timestamp or X-MLflow-Delivery-Id.")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError as exc:
        raise WebhookRejected("Malformed X-MLflow-Timestamp.") from exc
    if age > MAX_SKEW_SECONDS:
        raise WebhookRejected("Timestamp too old or in the future (possible replay).")
    version, _, given = signature.partition(",")
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    if version != "v1" or not hmac.compare_digest(given, expected):
        raise WebhookRejected("Bad signature.")
    if not cache.add(f"mlflow-webhook:{delivery_id}", 1, MAX_SKEW_SECONDS * 2):
        raise WebhookRejected("Delivery already received (replay).")


def webhook_received() -> Job | None:
    """Queue an incremental sync unless one is already waiting to start."""
    if Job.objects.filter(kind="catalog.sync_mlflow", status=JobStatus.QUEUED).exists():
        return None
    return job_enqueue(kind="catalog.sync_mlflow", title="Sync from MLflow (webhook)", params={"full": False})


def mlflow_webhook_register(*, tracking_uri: str, portal_url: str) -> str:
    """Create (or update) the portal's webhook in MLflow; returns its id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    url = portal_url.rstrip("/") + WEBHOOK_PATH
    events = [
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_alias.created",
        "model_version_alias.deleted",
    ]
    for hook in client.list_webhooks():
        if hook.name == WEBHOOK_NAME:
            client.update_webhook(hook.webhook_id, url=url, events=events, secret=settings.MLFLOW_WEBHOOK_SECRET)
            return hook.webhook_id
    return client.create_webhook(
        name=WEBHOOK_NAME, url=url, events=events, secret=settings.MLFLOW_WEBHOOK_SECRET
    ).webhook_id
