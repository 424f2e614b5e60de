"""Outgoing webhooks signed with HMAC-SHA256 (``X-Portal-Signature: sha256=<hex>``), SSRF-safe at connect time.

The host is resolved once, every address is checked (loopback, link-local,
private and metadata addresses are refused unless GOVERNANCE_WEBHOOK_ALLOW_PRIVATE),
and the connection goes to the checked address, so a DNS answer that changes
between check and connect cannot redirect it. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import socket
import ssl
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.services.git_source import address_problem
from governance.models import WebhookEndpoint
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record

TIMEOUT = 10


class WebhookRefused(Exception):
    pass


def webhook_secret(endpoint: WebhookEndpoint) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"webhook:{endpoint.pk}:{endpoint.salt}".encode(), "sha256"
    ).hexdigest()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _checked_addresses(url: str) -> tuple[str, str, int, list[str]]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("Webhook URLs must be http(s)://host/… .")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(f"{parts.hostname} cannot be resolved ({exc}).") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise WebhookRefused(f"{parts.hostname} resolves to {address}, a {problem}: refused.")
    return parts.scheme, parts.hostname, port, addresses


def webhook_create(*, actor, url: str, events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret, shown this once."""
    from governance.notify import EVENTS

    require(is_platform_admin(actor), "Only platform admins register webhooks.")
    unknown = sorted(set(events or []) - set(EVENTS))
    if unknown:
        raise ValidationError({"events": f"Unknown event(s): {', '.join(unknown)}. Known: {', '.join(EVENTS)}."})
    try:
        _checked_addresses(url)
    except WebhookRefused as exc:
        raise ValidationError({"url": str(exc)}) from exc
    endpoint = WebhookEndpoint.objects.create(
        url=url, events=events or [], salt=secrets.token_hex(16), created_by=actor
    )
    audit_record(action="webhook.create", obj=endpoint, after={"url": url, "events": endpoint.events})
    return endpoint, webhook_secret(endpoint)


def webhooks_send(payload: dict) -> None:
    from governance.tasks import deliver_webhook

    for endpoint in WebhookEndpoint.objects.filter(active=True):
        if not endpoint.events or payload["event"] in endpoint.events:
            try:
                deliver_webhook.delay(endpoint.pk, payload)
            except Exception:  # broker down: the notice and the audit trail still hold the event
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_status="not sent: broker unavailable")


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, address: str, hostname: str, port: int):
        super().__init__(hostname, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def webhook_deliver(endpoint_id: int, payload: dict) -> str:
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ml-platform-portal",
        "X-Portal-Event": payload["event"],
        "X-Portal-Signature": signature(webhook_secret(endpoint), body),
    }
    try:
        scheme, host, port, addresses = _checked_addresses(endpoint.url)
        parts = urlsplit(endpoint.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if scheme == "https":
            conn = _PinnedHTTPSConnection(addresses[0], host, port)
        else:
            conn = http.client.HTTPConnection(addresses[0], port, timeout=TIMEOUT)
        conn.request("POST", path, body=body, headers=headers | {"Host": parts.netloc})
        status = f"HTTP {conn.getresponse().status}"
        conn.close()
    except WebhookRefused as exc:
        status = f"refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        status = f"failed: {type(exc).__name__}: {exc}"
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_delivery_at=timezone.now(), last_status=status[:200])
    return status
