import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.django_db


def test_healthz_ok_when_database_broker_and_mlflow_answer(client, settings, mlflow_server):
    settings.MLFLOW_TRACKING_URI = mlflow_server
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {k: v["status"] for k, v in body["checks"].items()} == {"database": "ok", "broker": "ok", "mlflow": "ok"}


def test_healthz_degraded_but_200_when_mlflow_is_down(client, settings):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["checks"]["mlflow"]["status"] == "down"


def test_healthz_degraded_when_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    body = client.get("/healthz").json()
    assert body["checks"]["broker"]["status"] == "down"
    assert body["status"] == "degraded"


def test_healthz_degraded_when_embedded_broker_folder_is_gone(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    assert client.get("/healthz").json()["checks"]["broker"]["status"] == "down"


def test_healthz_is_503_when_the_database_is_down():
    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); body = r.json(); "
        "print(r.status_code, body['status'], body['checks']['database']['status'])"
    )
    env = {
        "DATABASE_URL": f"postgres://nobody@127.0.0.1:{free_port()}/none",
        "ALLOWED_HOSTS": "testserver",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PATH": "/usr/bin:/bin",
        "HEALTH_TIMEOUT_SECONDS": "0.5",
    }
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["503", "down", "down"], out.stderr[-2000:]


def test_pages_show_a_banner_when_a_service_is_down(client, settings, demo_users):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    client.force_login(demo_users["dana"])
    body = client.get("/").content.decode()
    assert 'data-testid="health-banner"' in body and "mlflow" in body
