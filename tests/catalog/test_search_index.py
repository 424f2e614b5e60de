"""The search index follows every write, and search reads it in a constant number of queries."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Model, SearchDoc
from catalog.selectors import catalog_search
from catalog.services.entities import deployment_record, entity_delete
from catalog.services.search_index import search_index_rebuild, search_index_refresh
from portal.models import Team
from tests.catalog.factories import make_model, make_version

pytestmark = pytest.mark.django_db


def names(params) -> list[str]:
    return [r["name"] for r in catalog_search(params).results]


def test_a_new_model_is_searchable_at_once_and_gone_once_deleted(demo_users):
    model = make_model("card-fraud-scorer", team="fraud", task="classification", tags=["pii"])
    assert names({"q": "FRAUD-SC"}) == ["card-fraud-scorer"]
    assert names({"q": "fraud", "tag": "pii"}) == ["card-fraud-scorer"]
    entity_delete(actor=demo_users["admin"], entity=model)
    assert names({"q": "fraud"}) == [] and not SearchDoc.objects.exists()


def test_editing_a_model_updates_what_it_is_found_by(demo_users):
    model = make_model("scorer", team="fraud", description="old words")
    model.description = "gradient boosted trees"
    model.save()
    assert names({"q": "boosted"}) == ["scorer"] and names({"q": "old words"}) == []


def test_version_aliases_and_deployments_make_a_model_findable_by_alias(demo_users):
    model = make_model("scorer", team="fraud")
    v1, _ = make_version(model, 1, aliases=["champion"])
    assert names({"alias": "champion"}) == ["scorer"] and names({"alias": "production"}) == []
    deployment_record(actor=demo_users["admin"], model_version=v1, environment="production")
    assert names({"alias": "production"}) == ["scorer"]
    assert catalog_search({"q": "scorer"}).facets["alias"] == {"champion": 1, "production": 1}


def test_renaming_a_team_reindexes_what_it_owns(demo_users):
    make_model("scorer", team="fraud")
    team = Team.objects.get(slug="fraud")
    team.slug = "fraud-ops"
    team.save()
    assert names({"team": "fraud-ops"}) == ["scorer"] and names({"q": "fraud-ops"}) == ["scorer"]


def test_bulk_loads_are_indexed_by_an_explicit_refresh_or_a_rebuild(demo_users):
    team = Team.objects.get(slug="fraud")
    Model.objects.bulk_create([Model(name=f"bulk-{i}", team=team, task="ranking") for i in range(3)])
    assert names({"q": "bulk"}) == []  # bulk_create sends no signals
    search_index_refresh("model", Model.objects.values_list("pk", flat=True))
    assert names({"q": "bulk"}) == ["bulk-0", "bulk-1", "bulk-2"]
    SearchDoc.objects.all().delete()
    call_command("search_reindex", stdout=open("/dev/null", "w"))
    assert names({"q": "bulk"}) == ["bulk-0", "bulk-1", "bulk-2"] and search_index_rebuild() == 3


def test_the_kind_facet_counts_every_kind_while_results_keep_to_the_chosen_one(demo_users):
    make_model("churn-model", team="forecasting")
    from catalog.services.entities import entity_save

    entity_save(actor=None, kind="project", name="churn-project", team=Team.objects.get(slug="forecasting"))
    result = catalog_search({"q": "churn", "kind": "project"})
    assert [r["name"] for r in result.results] == ["churn-project"] and result.count == 1
    assert result.facets["kind"] == {"model": 1, "project": 1}


def test_search_runs_the_same_queries_for_three_models_or_three_hundred(demo_users):
    team = Team.objects.get(slug="fraud")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            catalog_search({"q": "load", "team": "fraud"})
        return len(ctx.captured_queries)

    Model.objects.bulk_create([Model(name=f"load-{i}", team=team, tags=["t"]) for i in range(3)])
    search_index_rebuild()
    few = queries()
    Model.objects.bulk_create([Model(name=f"load-more-{i}", team=team, tags=["t"]) for i in range(300)])
    search_index_rebuild()
    assert queries() == few == 2


def test_the_sqlite_trigram_index_finds_exactly_what_a_substring_scan_finds(demo_users):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the FTS5 index is SQLite's; PostgreSQL uses pg_trgm")
    from catalog.selectors import _has_fts

    assert _has_fts()
    team = Team.objects.get(slug="fraud")
    names = ["card-fraud-xgb", "Fraudster-Ranker", "churn", "fra", "ufraud", 'quo"te-fraud']
    Model.objects.bulk_create([Model(name=n, team=team, description=f"about {n}") for n in names])
    search_index_rebuild()
    for q in ["fraud", "FRAUD", "fra", "ra", 'o"te', "xgb", "nothing-here"]:
        expected = sorted(n for n in names if q.lower() in f"{n} fraud about {n}".lower())
        assert sorted(r["name"] for r in catalog_search({"q": q}, limit=100).results) == expected, q


def test_search_links_match_the_routes_they_point_to(demo_users, api_client, make_token):
    from django.urls import reverse

    make_model("odd name+1", team="fraud")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['dana'], 'read')}")
    row = api_client.get("/api/v1/catalog/search/?q=odd").json()["results"][0]
    assert row["url"] == reverse("catalog:model_detail", args=["odd name+1"])
    assert row["api_url"] == "http://testserver" + reverse("catalog-model-detail", args=["odd name+1"])


def test_results_rank_the_exact_name_then_prefix_then_contains_then_tag_then_team_then_the_rest(demo_users):
    Team.objects.get_or_create(slug="vision", defaults={"name": "Vision"})
    make_model("zz-described", team="fraud", description="a vision model")
    make_model("zz-team-owned", team="vision")
    make_model("zz-tagged", team="fraud", tags=["Vision-approved"])
    make_model("best-vision-model", team="fraud")
    make_model("vision-b", team="fraud")
    make_model("vision-a", team="fraud")
    make_model("Vision", team="fraud")
    assert names({"q": "VISION"}) == [
        "Vision", "vision-a", "vision-b", "best-vision-model", "zz-tagged", "zz-team-owned", "zz-described"
    ]  # fmt: skip
    assert names({}) == sorted(names({}))  # no text: by name
