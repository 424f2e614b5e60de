import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import AuditEvent, Membership, Team

pytestmark = pytest.mark.django_db


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_admin_creates_team_in_browser(client, demo_users):
    client.force_login(demo_users["admin"])
    response = client.post("/teams/", {"slug": "vision", "name": "Vision", "description": "CV models"})
    assert response.status_code == 302 and response.url == "/teams/vision/"
    assert AuditEvent.objects.filter(action="team.create", actor="admin").exists()


def test_bad_team_slug_is_shown_next_to_the_field(client, demo_users):
    client.force_login(demo_users["admin"])
    response = client.post("/teams/", {"slug": "Not A Slug", "name": "x"})
    assert response.status_code == 200 and response.context["form"].errors["slug"]


def test_duplicate_team_via_api_names_the_field(api_client, demo_users, make_token):
    secret = make_token(demo_users["admin"], "admin")
    response = api_client.post("/api/v1/teams/", {"slug": "fraud", "name": "Again"}, format="json", **bearer(secret))
    assert response.status_code == 400 and "slug" in response.json()["fields"]


@pytest.mark.parametrize("who", ["olga", "dana", "eli"])
def test_only_platform_admins_create_teams(api_client, client, demo_users, make_token, who):
    secret = make_token(demo_users[who], "write")
    assert (
        api_client.post("/api/v1/teams/", {"slug": "x1", "name": "X"}, format="json", **bearer(secret)).status_code
        == 403
    )
    client.force_login(demo_users[who])
    assert client.post("/teams/", {"slug": "x2", "name": "X"}).status_code == 403
    assert not Team.objects.filter(slug__in=["x1", "x2"]).exists()


def test_maintainer_adds_a_member_in_browser_and_changes_role(client, demo_users):
    client.force_login(demo_users["eli"])
    response = client.post("/teams/forecasting/", {"username": "olga", "role": "member"})
    assert response.status_code == 302
    assert Membership.objects.get(team__slug="forecasting", user__username="olga").role == "member"
    client.post("/teams/forecasting/members/olga/", {"role": "maintainer", "action": "role"})
    assert Membership.objects.get(team__slug="forecasting", user__username="olga").role == "maintainer"
    client.post("/teams/forecasting/members/olga/", {"action": "remove"})
    assert not Membership.objects.filter(team__slug="forecasting", user__username="olga").exists()
    assert AuditEvent.objects.filter(action__startswith="membership.", actor="eli").count() == 3


def test_member_of_another_team_cannot_manage_members(client, api_client, demo_users, make_token):
    client.force_login(demo_users["dana"])
    assert client.post("/teams/forecasting/", {"username": "olga", "role": "member"}).status_code == 403
    assert client.post("/teams/forecasting/members/eli/", {"action": "remove"}).status_code == 403
    secret = make_token(demo_users["dana"], "write")
    response = api_client.post(
        "/api/v1/teams/forecasting/members/", {"username": "olga"}, format="json", **bearer(secret)
    )
    assert response.status_code == 403 and response.json()["message"]
    assert Membership.objects.filter(team__slug="forecasting", user__username="eli").exists()


def test_plain_member_cannot_manage_own_team(api_client, demo_users, make_token):
    secret = make_token(demo_users["dana"], "write")
    response = api_client.post("/api/v1/teams/fraud/members/", {"username": "olga"}, format="json", **bearer(secret))
    assert response.status_code == 403


def test_maintainer_manages_members_through_the_api(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    url = "/api/v1/teams/forecasting/members/"
    assert (
        api_client.post(url, {"username": "dana", "role": "member"}, format="json", **bearer(secret)).status_code == 201
    )
    assert (
        api_client.patch(url + "dana/", {"role": "maintainer"}, format="json", **bearer(secret)).json()["role"]
        == "maintainer"
    )
    names = [m["username"] for m in api_client.get(url, **bearer(secret)).json()]
    assert names == ["dana", "eli"]
    assert api_client.delete(url + "dana/", **bearer(secret)).status_code == 204


def test_unknown_member_is_a_field_error(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    response = api_client.post(
        "/api/v1/teams/forecasting/members/", {"username": "ghost"}, format="json", **bearer(secret)
    )
    assert response.status_code == 400 and "username" in response.json()["fields"]


def test_last_maintainer_cannot_leave_a_team_with_members(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    api_client.post("/api/v1/teams/forecasting/members/", {"username": "dana"}, format="json", **bearer(secret))
    response = api_client.delete("/api/v1/teams/forecasting/members/eli/", **bearer(secret))
    assert response.status_code == 409


def test_team_list_query_count_does_not_grow_with_teams(client, demo_users):
    client.force_login(demo_users["dana"])
    client.get("/teams/")  # warm the health-banner cache
    with CaptureQueriesContext(connection) as few:
        client.get("/teams/")
    for i in range(15):
        team = Team.objects.create(slug=f"team-{i}", name=f"Team {i}")
        Membership.objects.create(team=team, user=demo_users["eli"])
    with CaptureQueriesContext(connection) as many:
        assert client.get("/teams/").status_code == 200
    assert len(many) == len(few)


def test_team_detail_query_count_does_not_grow_with_members(client, demo_users):
    from django.contrib.auth import get_user_model

    client.force_login(demo_users["eli"])
    client.get("/teams/forecasting/")  # warm the health-banner cache
    with CaptureQueriesContext(connection) as few:
        client.get("/teams/forecasting/")
    team = Team.objects.get(slug="forecasting")
    for i in range(10):
        Membership.objects.create(team=team, user=get_user_model().objects.create(username=f"u{i}"))
    with CaptureQueriesContext(connection) as many:
        client.get("/teams/forecasting/")
    assert len(many) == len(few)


def test_last_maintainer_cannot_demote_themselves(api_client, client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    response = api_client.patch(
        "/api/v1/teams/forecasting/members/eli/",
        {"role": "member"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 409 and "maintainer" in response.json()["message"]
    client.force_login(demo_users["eli"])
    client.post("/teams/forecasting/members/eli/", {"role": "member", "action": "role"})
    assert Membership.objects.get(team__slug="forecasting", user__username="eli").role == "maintainer"


def test_forbidden_page_says_why(client, demo_users):
    client.force_login(demo_users["dana"])
    response = client.post("/teams/forecasting/", {"username": "olga", "role": "member"})
    assert response.status_code == 403
    body = response.content.decode()
    assert 'data-testid="forbidden"' in body and "Only the team&#x27;s maintainers" in body
