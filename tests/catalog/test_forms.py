import pytest

from catalog.models import FeatureVersion, Model
from portal.models import AuditEvent
from tests.catalog.factories import make_model
from tests.catalog.test_features import V1, V2

pytestmark = pytest.mark.django_db


def test_member_registers_and_edits_a_model_in_the_browser(client, demo_users):
    client.force_login(demo_users["dana"])
    form = client.get("/catalog/register/model/")
    assert [t.slug for t in form.context["form"].fields["team"].queryset] == ["fraud"]  # only their teams
    response = client.post(
        "/catalog/register/model/",
        {
            "name": "card-fraud-gbm",
            "team": "fraud",
            "task": "classification",
            "workload_type": "inference",
            "risk_tier": "3",
            "lifecycle": "experimental",
            "tags": "cards, realtime",
        },
    )
    assert response.status_code == 302 and response.url == "/catalog/models/card-fraud-gbm/"
    model = Model.objects.get(name="card-fraud-gbm")
    assert (model.team.slug, model.risk_tier, model.tags) == ("fraud", 3, ["cards", "realtime"])
    client.post(
        "/catalog/models/card-fraud-gbm/edit/",
        {
            "team": "fraud",
            "description": "GBM on card transactions",
            "workload_type": "inference",
            "risk_tier": "3",
            "lifecycle": "production",
            "tags": "cards",
        },
    )
    model.refresh_from_db()
    assert (model.description, model.lifecycle) == ("GBM on card transactions", "production")
    assert AuditEvent.objects.filter(object_type="catalog.model", object_id=str(model.pk)).count() == 2


def test_editing_another_teams_model_is_forbidden(client, demo_users):
    make_model("forecast", team="forecasting")
    client.force_login(demo_users["dana"])
    assert client.get("/catalog/models/forecast/edit/").status_code == 403
    assert client.post("/catalog/models/forecast/edit/", {"team": "fraud", "description": "x"}).status_code == 403


def test_feature_form_versions_changes_and_reports_identical_definitions(client, demo_users):
    client.force_login(demo_users["eli"])
    first = client.post("/catalog/register/feature/", {"name": "rolling_7d_avg_orders", "team": "forecasting", **V1})
    assert first.status_code == 302
    prefilled = client.get("/catalog/register/feature/?from=rolling_7d_avg_orders").context["form"].initial
    assert prefilled["null_handling"] == "forward_fill"
    same = client.post(
        "/catalog/register/feature/", {"name": "rolling_7d_avg_orders", "team": "forecasting", **V1}, follow=True
    )
    assert "nothing changed" in same.content.decode()
    client.post("/catalog/register/feature/", {"name": "rolling_7d_avg_orders", "team": "forecasting", **V2})
    assert FeatureVersion.objects.filter(feature__name="rolling_7d_avg_orders").count() == 2


def test_feature_form_shows_the_missing_field(client, demo_users):
    client.force_login(demo_users["eli"])
    response = client.post(
        "/catalog/register/feature/", {"name": "f", "team": "forecasting", **(V1 | {"source_table": ""})}
    )
    assert response.status_code == 200 and response.context["form"].errors["source_table"]
    assert not FeatureVersion.objects.exists()
