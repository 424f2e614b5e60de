import json
import time
import uuid

import pytest
import requests
from mlflow.webhooks.delivery import _generate_hmac_signature

from portal.models import Job
from tests.conftest import wait_until

URL = "/api/v1/catalog/webhooks/mlflow/"
SECRET = "s3cret-for-tests"


def signed_headers(body: str, secret: str = SECRET, *, timestamp: int | None = None, delivery: str | None = None):
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_MLFLOW_SIGNATURE": _generate_hmac_signature(secret, delivery, ts, body),
        "HTTP_X_MLFLOW_TIMESTAMP": ts,
        "HTTP_X_MLFLOW_DELIVERY_ID": delivery,
    }


@pytest.fixture
def configured(settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


BODY = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "m", "version": "1"}})


@pytest.mark.django_db
def test_signed_webhook_queues_one_incremental_sync(client, configured):
    from portal.celery import app

    app.conf.task_always_eager = False  # only check what gets queued here
    try:
        response = client.post(URL, BODY, content_type="application/json", **signed_headers(BODY))
        again = client.post(URL, BODY, content_type="application/json", **signed_headers(BODY))
    finally:
        app.conf.task_always_eager = True
    assert response.status_code == 202 and response.json()["queued"]
    assert again.status_code == 202 and not again.json()["queued"]  # one sync waiting is enough
    assert list(Job.objects.values_list("kind", "params")) == [("catalog.sync_mlflow", {"full": False})]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed_headers(BODY, "wrong-secret"),
        signed_headers(BODY, timestamp=int(time.time()) - 3600),
        signed_headers(BODY + " "),
    ],
    ids=["unsigned", "wrong-secret", "stale", "body-changed"],
)
def test_unsigned_forged_or_stale_webhooks_are_refused(client, configured, headers):
    response = client.post(URL, BODY, content_type="application/json", **headers)
    assert response.status_code == 401 and response.json()["message"]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_replayed_delivery_is_refused(client, configured):
    headers = signed_headers(BODY)
    assert client.post(URL, BODY, content_type="application/json", **headers).status_code == 202
    assert client.post(URL, BODY, content_type="application/json", **headers).status_code == 401


@pytest.mark.integration
def test_real_mlflow_server_delivers_a_webhook_that_syncs_the_catalog(live_server, mlflow_server, settings, demo_users):
    from mlflow import MlflowClient

    from catalog.models import Model
    from catalog.services.webhooks import mlflow_webhook_register

    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    settings.MLFLOW_TRACKING_URI = mlflow_server
    mlflow_webhook_register(tracking_uri=mlflow_server, portal_url=live_server.url)
    name = f"webhook-model-{uuid.uuid4().hex[:6]}"
    MlflowClient(tracking_uri=mlflow_server).create_registered_model(name, tags={"mlplatform.team": "fraud"})
    # The sync job commits the model before it records its own success, so wait for both.
    wait_until(lambda: Model.objects.filter(name=name).exists(), timeout=60)
    wait_until(lambda: Job.objects.filter(kind="catalog.sync_mlflow", status="succeeded").exists(), timeout=30)
    assert requests.post(live_server.url + URL, data=BODY, timeout=10).status_code == 401
