"""User journeys in a real Chromium driven by Playwright."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import wait_until

pytestmark = pytest.mark.browser

ROLES = [
    ("admin", "home-platform-admin", "platform admin"),
    ("dana", "home-team-member", "member of Fraud"),
    ("eli", "home-team-member", "maintainer of Forecasting"),
    ("rita", "home-risk-approver", "risk approver"),
    ("raj", "home-risk-approver", "risk approver"),
    ("finn", "home-finance-viewer", "finance viewer"),
    ("olga", "home-newcomer", "no team and no platform role"),
]


@pytest.mark.parametrize(("username", "marker", "who"), ROLES)
def test_each_demo_role_signs_in_and_lands_on_its_home(
    page, live_server, demo_users, sign_in, shot, username, marker, who
):
    sign_in(username)
    expect(page.get_by_test_id(marker)).to_be_visible()
    expect(page.get_by_test_id("who-am-i")).to_contain_text(who)
    shot(f"home-{username}")
    page.get_by_text(username, exact=True).click()  # the user menu
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/|/$"))
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_wrong_password_shows_a_generic_error(page, live_server, demo_users):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Login").fill("dana")
    page.locator("#id_password").fill("wrong")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("not correct")).to_be_visible()


def test_ml_engineer_creates_a_token_in_the_browser_and_uses_it(page, live_server, demo_users, sign_in, shot):
    sign_in("eli")
    page.get_by_role("link", name="API tokens").first.click()
    page.get_by_label("Name").fill("ci-forecasting")
    page.get_by_label("Token for").select_option(label="Team Forecasting (service account)")
    page.get_by_label("write").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("token-secret").input_value()
    shot("token-created")
    me = requests.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "svc-forecasting"
    page.reload()
    expect(page.get_by_test_id("token-secret")).to_have_count(0)  # shown once
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-token="ci-forecasting"]').get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked; it no longer authenticates")).to_be_visible()
    assert (
        requests.get(
            f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        ).status_code
        == 401
    )


def test_maintainer_adds_a_member_with_the_keyboard(page, live_server, demo_users, sign_in):
    sign_in("eli")
    page.goto(f"{live_server.url}/teams/forecasting/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Username").press("Enter")
    expect(page.get_by_text("olga is now a member of Forecasting")).to_be_visible()
    expect(page.locator('tr[data-member="olga"]')).to_be_visible()


def test_platform_admin_watches_the_selftest_log_live(page, live_server, demo_users, celery_worker, sign_in, shot):
    sign_in("admin")
    page.get_by_role("button", name="Run platform self-test").first.click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.get_by_test_id("job-log")).to_contain_text("Checking database", timeout=30_000)
    expect(page.get_by_test_id("job-live").locator("[data-status]").first).to_have_text("succeeded", timeout=60_000)
    expect(page.get_by_test_id("job-log")).to_contain_text("Not answering: mlflow")
    shot("job-selftest")
    job_id = int(re.search(r"/jobs/(\d+)/", page.url).group(1))
    body = wait_until(lambda: requests.get(f"{live_server.url}/healthz", timeout=10).json(), timeout=5)
    assert body["checks"]["database"]["status"] == "ok" and job_id > 0


def test_risk_approver_verifies_and_exports_the_audit_trail(page, live_server, demo_users, sign_in, shot):
    from portal.services.audit import audit_signing_key_generate

    audit_signing_key_generate()  # as `make demo` does: exports come with a signed digest
    sign_in("rita")
    page.get_by_role("button", name="Verify the audit trail").click()
    expect(page.get_by_test_id("verify-result")).to_contain_text("Chain intact")
    shot("audit")
    expect(page).to_have_url(re.compile(r"/governance/audit/"))
    with page.expect_download() as download:
        page.get_by_test_id("export-jsonl").click()
    assert download.value.suggested_filename.endswith(".jsonl")


def test_newcomer_without_team_cannot_open_the_audit_trail(page, live_server, demo_users, sign_in):
    sign_in("olga")
    response = page.goto(f"{live_server.url}/audit/")
    assert response.status == 403


def test_api_docs_render_without_any_cdn(page, live_server, demo_users, sign_in):
    sign_in("eli")
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.get_by_text("ML Platform Portal API").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/v1/me/").first).to_be_visible()
    assert outside == []
