import hashlib
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import ApiToken, AuditEvent, Membership

pytestmark = pytest.mark.django_db


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_token_is_stored_only_as_a_sha256_digest(demo_users, make_token):
    secret = make_token(demo_users["eli"], "read")
    token = ApiToken.objects.get()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.prefix, token.digest, token.name}
    assert secret not in "".join(AuditEvent.objects.values_list("after", flat=True))


def test_me_with_bearer_token_returns_user_teams_and_roles(api_client, demo_users, make_token):
    response = api_client.get("/api/v1/me/", **bearer(make_token(demo_users["eli"])))
    assert response.status_code == 200
    assert response.json() == {
        "username": "eli",
        "email": "eli@example.com",
        "teams": [{"slug": "forecasting", "name": "Forecasting", "role": "maintainer"}],
        "roles": [],
    }


def test_me_lists_platform_roles(api_client, demo_users, make_token):
    assert api_client.get("/api/v1/me/", **bearer(make_token(demo_users["rita"]))).json()["roles"] == ["risk_approver"]


@pytest.mark.parametrize("header", ["Bearer mlp_nottherealone", "Bearer", "Bearer a b", "Token abc", "Bearer \xe9"])
def test_malformed_or_unknown_token_gets_401_json(api_client, demo_users, header):
    response = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)  # "Token abc" is not our scheme: plain unauthenticated
    assert response.json()["message"]
    if header.startswith("Bearer"):
        assert response.status_code == 401


def test_expired_token_gets_401(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"])
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client.get("/api/v1/me/", **bearer(secret))
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_revoked_token_gets_401(client, api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"])
    token = ApiToken.objects.get()
    client.force_login(demo_users["eli"])
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    assert api_client.get("/api/v1/me/", **bearer(secret)).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoke", object_id=str(token.pk)).exists()


def test_token_without_needed_scope_gets_403(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "read")
    response = api_client.post("/api/v1/tokens/", {"name": "x"}, format="json", **bearer(secret))
    assert response.status_code == 403 and "'write' scope" in response.json()["message"]


def test_write_scope_creates_token_via_api_and_shows_secret_once(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    response = api_client.post("/api/v1/tokens/", {"name": "ci", "scopes": ["read"]}, format="json", **bearer(secret))
    assert response.status_code == 201
    new = response.json()["token"]
    assert api_client.get("/api/v1/me/", **bearer(new)).status_code == 200
    listed = api_client.get("/api/v1/tokens/", **bearer(secret)).json()["results"]
    assert all("token" not in t for t in listed) and {t["name"] for t in listed} == {"test", "ci"}


def test_validation_errors_name_the_field(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    response = api_client.post("/api/v1/tokens/", {"name": "", "scopes": ["root"]}, format="json", **bearer(secret))
    assert response.status_code == 400
    body = response.json()
    assert set(body["fields"]) == {"name", "scopes"} and body["message"]


def test_team_token_acts_as_the_team_service_account(api_client, demo_users, make_token):
    from portal.models import Team

    secret = make_token(demo_users["eli"], "read", team=Team.objects.get(slug="forecasting"))
    me = api_client.get("/api/v1/me/", **bearer(secret)).json()
    assert me["username"] == "svc-forecasting"
    assert me["teams"] == [{"slug": "forecasting", "name": "Forecasting", "role": "member"}]
    assert Membership.objects.get(user__username="svc-forecasting").is_service_account


def test_member_cannot_create_team_token_for_another_team(api_client, demo_users, make_token):
    secret = make_token(demo_users["dana"], "write")
    response = api_client.post(
        "/api/v1/tokens/", {"name": "ci", "team": "forecasting"}, format="json", **bearer(secret)
    )
    assert response.status_code == 403


def test_only_admins_get_admin_scope(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    response = api_client.post("/api/v1/tokens/", {"name": "x", "scopes": ["admin"]}, format="json", **bearer(secret))
    assert response.status_code == 403


def test_session_auth_requires_csrf_on_writes(demo_users):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(demo_users["eli"])
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["message"]


def test_create_token_command_prints_only_the_token(transactional_db, demo_users, tmp_path):
    from tests.conftest import ROOT, worker_env

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_token",
            "--user",
            "eli",
            "--name",
            "ci",
            "--scope",
            "read",
            "--scope",
            "promote",
        ],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    secret = result.stdout.strip()
    assert result.stdout.count("\n") == 1 and secret.startswith("mlp_")
    token = ApiToken.objects.get(name="ci")
    assert token.user.username == "eli" and sorted(token.scopes) == ["promote", "read"]


def test_create_token_command_rejects_unknown_user(transactional_db, demo_users):
    from tests.conftest import ROOT, worker_env

    result = subprocess.run(
        [sys.executable, "manage.py", "create_token", "--user", "nobody", "--name", "ci"],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and result.stdout == "" and "No user 'nobody'" in result.stderr


def test_token_page_shows_secret_once_after_redirect(client, demo_users):
    client.force_login(demo_users["dana"])
    response = client.post("/tokens/", {"name": "notebook", "owner": "", "scopes": ["read"], "expires_in_days": "30"})
    assert response.status_code == 302  # post/redirect/get: a reload cannot create a second token
    page = client.get("/tokens/")
    secret = page.context["created"]["secret"]
    assert secret.startswith("mlp_") and secret in page.content.decode()
    assert ApiToken.objects.get(name="notebook").digest == hashlib.sha256(secret.encode()).hexdigest()
    assert "token-secret" not in client.get("/tokens/").content.decode()
    assert ApiToken.objects.filter(name="notebook").count() == 1
