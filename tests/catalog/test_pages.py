import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.services.features import feature_register
from portal.models import Team
from tests.catalog.factories import complete_version, make_model, make_version
from tests.catalog.test_features import V1, V2

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(client, demo_users):
    client.force_login(demo_users["dana"])
    client.get("/")  # warm the health-banner cache so query counts compare like with like
    return client


def test_olga_cannot_open_catalog_pages(client, demo_users):
    client.force_login(demo_users["olga"])
    for url in ["/catalog/", "/catalog/models/", "/catalog/features/"]:
        assert client.get(url).status_code == 403


def test_search_page_finds_models_and_links_work_without_js(dana):
    make_model("fraud-detection", team="fraud", task="classification")
    body = dana.get("/catalog/?q=fraud").content.decode()
    assert 'href="/catalog/models/fraud-detection/"' in body and "1 result" in body
    assert 'href="?q=fraud&amp;task=classification"' in body  # a facet is a plain link
    partial = dana.get("/catalog/?q=fraud", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="search-results"') and "<html" not in partial


def test_empty_search_says_what_to_do_next(dana):
    assert "Nothing matches" in dana.get("/catalog/?q=zzz").content.decode()


def test_model_list_filters_sorts_and_exports_csv(dana):
    make_model("a-model", team="fraud", task="classification")
    make_model("b-model", team="forecasting", task="forecasting")
    body = dana.get("/catalog/models/?team=forecasting").content.decode()
    assert "b-model" in body and "a-model" not in body
    csv = dana.get("/catalog/models/?export=csv").content.decode().splitlines()
    assert csv[0].startswith("Name,Team") and len(csv) == 3


def test_model_page_shows_owner_tabs_and_version_lineage_with_missing_components(dana):
    model = make_model("demand_forecast_model", team="forecasting", task="forecasting")
    make_version(model, 1, bare=True, metrics={"rmse": 3.2})
    body = dana.get("/catalog/models/demand_forecast_model/").content.decode()
    assert 'data-testid="owner"' in body and "Forecasting" in body
    for tab in ("versions", "deployments", "history"):
        assert dana.get(f"/catalog/models/demand_forecast_model/{tab}/").status_code == 200
    assert (
        dana.get("/catalog/models/demand_forecast_model/lineage/").url
        == "/catalog/models/demand_forecast_model/versions/1/"
    )
    page = dana.get("/catalog/models/demand_forecast_model/versions/1/").content.decode()
    assert 'data-component="code" data-present="false"' in page
    assert 'data-component="metrics" data-present="true"' in page
    assert "node-missing" in page and "2 of 6" in page


def test_feature_page_shows_versions_changes_and_who_uses_them(dana, demo_users):
    team = Team.objects.get(slug="forecasting")
    v1 = feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", team=team, **V1).version
    feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", **V2)
    complete_version(make_model("demand_forecast_model", team="forecasting"), 1, {"rolling_7d_avg_orders": v1.version})
    body = dana.get("/catalog/features/rolling_7d_avg_orders/").content.decode()
    assert "null handling" in body and "forward_fill" in body and "zero_fill" in body
    assert "demand_forecast_model v1" in body


def test_model_pages_run_a_constant_number_of_queries(dana):
    def counts():
        out = {}
        for url in [
            "/catalog/models/m/",
            "/catalog/models/m/versions/",
            "/catalog/models/m/versions/1/",
            "/catalog/models/",
            "/catalog/?q=m",
        ]:
            with CaptureQueriesContext(connection) as ctx:
                assert dana.get(url).status_code == 200, url
            out[url] = len(ctx)
        return out

    model = make_model("m", team="fraud")
    make_version(model, 1, datasets=[("d", "x1", "")], aliases=["production"])
    small = counts()
    for i in range(2, 30):
        make_version(
            model, i, datasets=[("d", f"x{i}", ""), ("e", f"y{i}", "")], aliases=["staging"] if i == 29 else []
        )
    for i in range(10):
        make_model(f"m-{i}", team="forecasting")
    assert counts() == small


def test_home_shows_the_members_team_models_and_hides_the_catalog_from_olga(client, demo_users):
    make_model("fraud-detection", team="fraud")
    make_model("forecast", team="forecasting")
    client.force_login(demo_users["dana"])
    body = client.get("/").content.decode()
    assert 'data-testid="home-catalog"' in body and "fraud-detection" in body and ">forecast<" not in body
    client.force_login(demo_users["olga"])
    assert 'data-testid="home-catalog"' not in client.get("/").content.decode()


def test_lineage_contract_page_names_the_run_keys(dana):
    body = dana.get("/catalog/lineage-contract/").content.decode()
    for key in ("mlflow.source.git.commit", "mlplatform.feature_versions", "mlplatform.image_digest"):
        assert key in body


def test_feature_dataset_and_project_pages_run_a_constant_number_of_queries(dana, demo_users):
    team = Team.objects.get(slug="forecasting")
    make_model("p-model", team="forecasting")

    def counts():
        out = {}
        for url in ["/catalog/features/f/", "/catalog/datasets/d/", "/catalog/projects/p/"]:
            with CaptureQueriesContext(connection) as ctx:
                assert dana.get(url).status_code == 200, url
            out[url] = len(ctx)
        return out

    from catalog.services.entities import entity_save

    entity_save(actor=None, kind="project", name="p", team=team)
    v1 = feature_register(actor=demo_users["eli"], name="f", team=team, **V1).version
    model = make_model("m", team="forecasting")
    complete_version(model, 1, {"f": v1.version}, datasets=[("d", "x1", "")])
    small = counts()
    v2 = feature_register(actor=demo_users["eli"], name="f", **V2).version
    for i in range(2, 12):
        complete_version(model, i, {"f": (v1 if i % 2 else v2).version}, datasets=[("d", f"x{i}", "")])
    assert counts() == small
