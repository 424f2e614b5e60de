"""Outgoing webhooks: signed, and never sent to internal addresses unless allowed."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError

from governance.models import WebhookEndpoint
from governance.services import promotion_request
from governance.webhooks import webhook_create, webhook_deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_metadata_loopback_and_private_addresses_are_refused(demo_users, settings):
    settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9/x", "http://10.0.0.5/x", "ftp://x/y"):
        with pytest.raises(ValidationError):
            webhook_create(actor=demo_users["admin"], url=url)
    assert not WebhookEndpoint.objects.exists()


def test_an_address_that_turns_internal_after_registration_is_refused_at_connect_time(demo_users, settings, receiver):
    url, received = receiver
    settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, _ = webhook_create(actor=demo_users["admin"], url=url)
    settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = False
    assert webhook_deliver(endpoint.pk, {"event": "drift"}).startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert received == []


def test_events_are_delivered_signed_with_hmac_sha256(
    demo_users, settings, receiver, scorer, django_capture_on_commit_callbacks
):
    url, received = receiver
    settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, secret = webhook_create(actor=demo_users["admin"], url=url, events=["gates"])
    assert secret not in json.dumps(list(WebhookEndpoint.objects.values()), default=str)  # derived, never stored
    with django_capture_on_commit_callbacks(execute=True):
        promotion_request(
            actor=demo_users["dana"], model_version=scorer.versions.get(), environment="production", justification="go"
        )
    assert len(received) == 1
    headers, body = received[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Portal-Signature"] == expected and headers["X-Portal-Event"] == "gates"
    assert json.loads(body)["promotion"]["status"] == "awaiting_approval"
    endpoint.refresh_from_db()
    assert endpoint.last_status == "HTTP 204"


def test_only_admins_register_webhooks_through_the_api(api_client, make_token, demo_users, settings):
    settings.GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = True
    body = {"url": "http://127.0.0.1:9/hook", "events": ["drift"]}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'write', 'promote')}")
    assert api_client.post("/api/v1/governance/webhooks/", body, format="json").status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['admin'], 'admin')}")
    created = api_client.post("/api/v1/governance/webhooks/", body, format="json")
    assert created.status_code == 201 and len(created.json()["secret"]) == 64
    unknown = api_client.post("/api/v1/governance/webhooks/", body | {"events": ["nope"]}, format="json")
    assert unknown.status_code == 400 and "Unknown event" in str(unknown.json())
