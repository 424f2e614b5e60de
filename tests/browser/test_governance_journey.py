"""Promotion end to end in a real Chromium, with a real Celery worker, MLflow server and manifest repository."""

import json
import re
import subprocess

import pytest
from django.core.management import call_command
from mlflow import MlflowClient
from playwright.sync_api import expect

from catalog.models import ModelVersion
from governance.models import Promotion, Status
from governance.services import promotion_decide, promotion_request
from portal.services.audit import audit_signing_key_generate
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def demo_catalog(settings, mlflow_server, demo_users, tmp_path):
    settings.MLFLOW_TRACKING_URI = mlflow_server
    settings.GOVERNANCE_MANIFEST_REPO = str(tmp_path / "environments.git")
    audit_signing_key_generate()  # as `make demo` does: exports are signed with it
    call_command("seed_mlflow_demo")
    call_command("sync_mlflow")
    return MlflowClient(tracking_uri=mlflow_server)


def applied(pk: int) -> bool:
    return Promotion.objects.get(pk=pk).status == Status.APPLIED


def test_dana_requests_rita_approves_the_alias_moves_and_dana_rolls_back(
    page, live_server, demo_catalog, celery_worker, demo_users, sign_in, shot, settings, tmp_path
):
    # v2 went to production through the portal earlier (so there is something to roll back to).
    v2 = ModelVersion.objects.get(model__name="fraud-detection", version=2)
    first, _ = promotion_request(
        actor=demo_users["dana"], model_version=v2, environment="production", justification="v2"
    )
    wait_until(lambda: Promotion.objects.get(pk=first.pk).status == Status.AWAITING_APPROVAL, timeout=60)
    promotion_decide(actor=demo_users["raj"], promotion=first, decision="approve", comment="ok")
    wait_until(lambda: applied(first.pk), timeout=60)

    sign_in("dana")
    page.goto(f"{live_server.url}/catalog/models/fraud-detection/versions/3/")
    page.get_by_test_id("request-production").click()
    page.get_by_label("Justification").fill("AUC 0.987 against 0.970 in production.")
    page.get_by_role("button", name="Request promotion").click()
    expect(page).to_have_url(re.compile(r"/governance/promotions/\d+/$"))
    live = page.get_by_test_id("promotion-live")
    expect(live).to_contain_text("awaiting_approval", timeout=60_000)  # polled while the worker runs the gates
    expect(live.locator('[data-gate="feature_parity"]')).to_contain_text("Feature-version parity")
    shot("governance-request")
    request_url = page.url

    page.context.clear_cookies()
    sign_in("rita")
    expect(page.get_by_test_id("home-inbox")).to_contain_text("fraud-detection v3")
    page.get_by_text("Open the inbox").click()
    item = page.get_by_test_id("inbox-item").filter(has_text="fraud-detection v3")
    expect(item).to_contain_text("Metrics against production")
    shot("governance-inbox")
    item.get_by_label("Comment").fill("Gates green; better AUC.")
    item.get_by_test_id("approve").click()
    expect(page.get_by_text("Your vote is recorded")).to_be_visible()
    page.goto(request_url)
    expect(page.get_by_test_id("promotion-live")).to_contain_text("applied", timeout=60_000)
    shot("governance-applied")
    assert demo_catalog.get_model_version_by_alias("fraud-detection", "production").version == "3"
    manifest = subprocess.run(
        ["git", "--git-dir", settings.GOVERNANCE_MANIFEST_REPO, "show", "main:environments/production.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "fraud-detection" in manifest and "version: 3" in manifest

    page.context.clear_cookies()
    sign_in("dana")
    page.goto(f"{live_server.url}/catalog/models/fraud-detection/")
    page.get_by_role("link", name="Roll back…").click()
    page.get_by_label("Reason").fill("p99 latency doubled after the switch")
    page.get_by_role("button", name="Roll back").click()
    expect(page.get_by_test_id("promotion-live")).to_contain_text("applied", timeout=60_000)
    assert demo_catalog.get_model_version_by_alias("fraud-detection", "production").version == "2"

    page.context.clear_cookies()
    sign_in("rita")
    page.goto(f"{live_server.url}/governance/audit/")
    with page.expect_download() as download:
        page.get_by_test_id("export-jsonl").click()
    export = tmp_path / "audit.jsonl"
    download.value.save_as(export)
    page.get_by_test_id("verify").click()
    expect(page.get_by_test_id("verify-result")).to_contain_text("Chain intact")
    shot("governance-audit")
    lines = export.read_text().splitlines()
    assert any(json.loads(line)["action"] == "promotion.rollback" for line in lines)
    call_command("audit_verify", "--export", str(export))
