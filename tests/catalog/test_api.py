import pytest

from catalog.models import Deployment, Model
from portal.models import AuditEvent
from tests.catalog.factories import complete_version, make_model, make_version
from tests.catalog.test_features import V1, V2

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_user(api_client, make_token):
    def login(user, *scopes):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, *(scopes or ('read',)))}")
        return api_client

    return login


def test_user_without_team_or_role_gets_403_everywhere(as_user, demo_users):
    client = as_user(demo_users["olga"], "write")
    for url in ["/api/v1/catalog/models/", "/api/v1/catalog/search/?q=x", "/api/v1/catalog/features/"]:
        assert client.get(url).status_code == 403, url
    assert client.post("/api/v1/catalog/projects/", {"name": "p", "team": "fraud"}, format="json").status_code == 403


def test_every_team_member_and_role_holder_reads_the_whole_catalog(as_user, demo_users):
    make_model("fraud-detection", team="fraud")
    for who in ("eli", "finn", "rita"):
        names = [m["name"] for m in as_user(demo_users[who]).get("/api/v1/catalog/models/").json()["results"]]
        assert names == ["fraud-detection"], who


def test_member_creates_and_updates_own_team_model_with_a_token(as_user, demo_users):
    client = as_user(demo_users["dana"], "write")
    created = client.post(
        "/api/v1/catalog/models/",
        {"name": "fraud-v2", "team": "fraud", "task": "classification", "tags": ["cards"], "risk_tier": 3},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert client.patch("/api/v1/catalog/models/fraud-v2/", {"description": "better"}, format="json").status_code == 200
    model = Model.objects.get(name="fraud-v2")
    assert (model.description, model.risk_tier, model.tags) == ("better", 3, ["cards"])
    assert AuditEvent.objects.filter(action__in=["model.create", "model.update"], actor="dana").count() == 2


def test_writing_another_teams_model_is_403_and_changes_nothing(as_user, demo_users):
    make_model("forecast", team="forecasting")
    client = as_user(demo_users["dana"], "write")
    assert client.patch("/api/v1/catalog/models/forecast/", {"description": "x"}, format="json").status_code == 403
    assert client.delete("/api/v1/catalog/models/forecast/").status_code == 403
    assert Model.objects.get(name="forecast").description == ""


def test_only_maintainers_delete(as_user, demo_users):
    make_model("f1", team="fraud")
    assert as_user(demo_users["dana"], "write").delete("/api/v1/catalog/models/f1/").status_code == 403
    make_model("fc1", team="forecasting")
    assert as_user(demo_users["eli"], "write").delete("/api/v1/catalog/models/fc1/").status_code == 204


def test_duplicate_name_is_a_field_error(as_user, demo_users):
    make_model("taken", team="fraud")
    response = as_user(demo_users["eli"], "write").post(
        "/api/v1/catalog/models/", {"name": "taken", "team": "forecasting"}, format="json"
    )
    assert response.status_code == 400 and "name" in response.json()["fields"]


def test_read_scope_cannot_write(as_user, demo_users):
    response = as_user(demo_users["dana"], "read").post(
        "/api/v1/catalog/models/", {"name": "m", "team": "fraud"}, format="json"
    )
    assert response.status_code == 403


def test_register_feature_through_the_api_is_idempotent_and_versions_changes(as_user, demo_users):
    client = as_user(demo_users["eli"], "write")
    first = client.post(
        "/api/v1/catalog/features/", {"name": "rolling_7d_avg_orders", "team": "forecasting", **V1}, format="json"
    )
    again = client.post("/api/v1/catalog/features/", {"name": "rolling_7d_avg_orders", **V1}, format="json")
    changed = client.post("/api/v1/catalog/features/", {"name": "rolling_7d_avg_orders", **V2}, format="json")
    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 201)
    assert first.json()["version"] == again.json()["version"] != changed.json()["version"]
    assert changed.json()["changes"][0]["label"] == "null handling"
    feature = client.get("/api/v1/catalog/features/rolling_7d_avg_orders/").json()
    assert feature["latest_version"] == changed.json()["version"]
    assert feature["served"] == {"staging": changed.json()["version"], "production": changed.json()["version"]}
    missing = client.post(
        "/api/v1/catalog/features/", {"name": "x", "team": "forecasting", **(V1 | {"data_type": ""})}, format="json"
    )
    assert missing.status_code == 400 and "data_type" in missing.json()["fields"]


def test_reverse_lineage_answers_what_uses_a_feature_version_dataset_and_commit(as_user, demo_users):
    client = as_user(demo_users["eli"], "write")
    fv = client.post(
        "/api/v1/catalog/features/", {"name": "rolling_7d_avg_orders", "team": "forecasting", **V1}, format="json"
    ).json()
    model = make_model("demand_forecast_model", team="forecasting")
    complete_version(
        model, 1, {"rolling_7d_avg_orders": fv["version"]}, datasets=[("orders_daily", "d1gest", "s3://o")]
    )
    make_version(make_model("other", team="forecasting"), 1)
    used = client.get(f"/api/v1/catalog/features/rolling_7d_avg_orders/versions/{fv['version']}/used-by/").json()
    assert [(r["model"], r["version"]) for r in used["model_versions"]] == [("demand_forecast_model", 1)]
    data = client.get("/api/v1/catalog/datasets/orders_daily/used-by/").json()
    assert (
        data["snapshots"][0]["digest"] == "d1gest"
        and data["snapshots"][0]["model_versions"][0]["model"] == "demand_forecast_model"
    )
    commit = client.get("/api/v1/catalog/commits/0123456789ab/used-by/").json()
    assert {r["model"] for r in commit["model_versions"]} == {"demand_forecast_model", "other"}


def test_version_claiming_an_unregistered_feature_version_is_reported(demo_users):
    model = make_model("m", team="forecasting")
    _, problems = make_version(model, 1, tags={"mlplatform.feature_versions": '{"ghost": "abcdefabcdef"}'})
    assert problems == ["claims feature ghost@abcdefabcdef, which is not registered"]


def test_model_version_api_shows_lineage_components_and_completeness(as_user, demo_users):
    model = make_model("m", team="fraud")
    make_version(model, 1, bare=True, params={}, metrics={"accuracy": 0.9})
    body = as_user(demo_users["dana"]).get("/api/v1/catalog/model-versions/?model=m").json()["results"][0]
    assert body["completeness"] == round(1 / 6, 3)
    assert {c["key"]: c["present"] for c in body["lineage"]} == {
        "code": False,
        "data": False,
        "features": False,
        "environment": False,
        "params": False,
        "metrics": True,
    }


def test_deployment_recorded_through_the_api_replaces_the_previous_version(as_user, demo_users):
    model = make_model("m", team="fraud")
    make_version(model, 1), make_version(model, 2)
    client = as_user(demo_users["dana"], "write")
    for version in (1, 2):
        response = client.post(
            "/api/v1/catalog/deployments/",
            {
                "model": "m",
                "version": version,
                "environment": "production",
                "endpoint": "https://serve/m",
                "replicas": 2,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
    assert list(Deployment.objects.values_list("model_version__version", flat=True)) == [2]


def test_search_ranks_name_matches_first_and_returns_facets(as_user, demo_users):
    make_model("fraud-detection", team="fraud", task="classification", tags=["cards"])
    make_model("churn", team="fraud", description="uses fraud signals")
    make_model("forecast", team="forecasting", task="forecasting")
    body = as_user(demo_users["finn"]).get("/api/v1/catalog/search/?q=fraud").json()
    assert [r["name"] for r in body["results"]] == ["fraud-detection", "churn"]
    assert set(body["results"][0]) >= {"kind", "name", "team", "url", "api_url"}
    assert body["facets"]["kind"]["model"] == 2 and body["facets"]["team"] == {"fraud": 2}
    narrowed = as_user(demo_users["finn"]).get("/api/v1/catalog/search/?q=fraud&task=classification").json()
    assert [r["name"] for r in narrowed["results"]] == ["fraud-detection"]


def test_search_pages_with_next_links(as_user, demo_users):
    for i in range(5):
        make_model(f"ranker-{i}", team="fraud", task="ranking")
    client = as_user(demo_users["dana"])
    first = client.get("/api/v1/catalog/search/?q=ranker&limit=2").json()
    assert [r["name"] for r in first["results"]] == ["ranker-0", "ranker-1"] and first["count"] == 5
    second = client.get(first["next"]).json()
    assert [r["name"] for r in second["results"]] == ["ranker-2", "ranker-3"]
    last = client.get(second["next"]).json()
    assert [r["name"] for r in last["results"]] == ["ranker-4"] and last["next"] is None
    assert client.get("/api/v1/catalog/search/?q=x&limit=abc").status_code == 400
