"""The catalog's first-click journey on the demo data, in a real Chromium."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def demo_catalog(settings, mlflow_server, demo_users):
    settings.MLFLOW_TRACKING_URI = mlflow_server
    call_command("seed_mlflow_demo")
    call_command("sync_mlflow")


def test_newcomer_searches_opens_a_model_and_follows_its_lineage(page, live_server, demo_catalog, sign_in, shot):
    sign_in("dana")
    page.keyboard.press("/")  # focuses search from anywhere
    page.keyboard.type("fraud")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/catalog/\?q=fraud"))
    results = page.locator("ul.results")
    expect(results.get_by_role("link", name="fraud-detection")).to_be_visible()
    shot("catalog-search")
    results.get_by_role("link", name="fraud-detection").click()
    expect(page.get_by_test_id("owner")).to_have_text("Fraud")
    page.get_by_role("link", name="Versions").click()
    expect(page).to_have_url(re.compile(r"/catalog/models/fraud-detection/versions/$"))
    page.locator("table a", has_text=re.compile(r"^v\d+$")).first.click()
    expect(page.get_by_test_id("lineage-graph")).to_be_visible()
    shot("catalog-version")

    page.goto(f"{live_server.url}/catalog/models/churn-propensity/lineage/")
    expect(page.get_by_test_id("lineage-graph").locator(".node-missing").first).to_be_visible()
    expect(page.locator('[data-component="environment"]')).to_contain_text("missing")
    shot("catalog-incomplete-lineage")


def test_asking_which_models_use_a_feature(page, live_server, demo_catalog, sign_in, shot):
    sign_in("eli")
    page.goto(f"{live_server.url}/catalog/features/rolling_7d_avg_orders/")
    expect(page.get_by_test_id("changes")).to_contain_text("null handling")
    expect(page.get_by_text("demand_forecast_model v1").first).to_be_visible()
    shot("catalog-feature")


def test_live_search_updates_results_as_you_type(page, live_server, demo_catalog, sign_in):
    sign_in("finn")
    page.goto(f"{live_server.url}/catalog/")
    page.get_by_label("Search the catalog").last.fill("demand")
    expect(page.get_by_test_id("result-count")).to_contain_text("for “demand”")
    expect(page.locator("ul.results").get_by_role("link", name="demand_forecast_model")).to_be_visible()
