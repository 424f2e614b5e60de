import pytest

pytestmark = pytest.mark.django_db


def login(client, who, password="demo"):
    return client.post("/accounts/login/", {"login": who, "password": password})


@pytest.mark.parametrize("who", ["dana", "dana@example.com"])
def test_sign_in_with_username_or_email_lands_on_home(client, demo_users, who):
    response = login(client, who)
    assert response.status_code == 302 and response.url == "/"
    assert "Welcome, Dana" in client.get("/").content.decode()


def test_wrong_password_gets_a_generic_message(client, demo_users):
    response = login(client, "dana", "nope")
    body = response.content.decode()
    assert response.status_code == 200
    assert "not correct" in body  # allauth: "The username and/or password you specified are not correct."
    assert "_auth_user_id" not in client.session
    # The same message whether or not the account exists.
    assert "not correct" in login(client, "nobody-here", "nope").content.decode()


def test_repeated_failed_logins_are_rate_limited(client, demo_users):
    for _ in range(5):
        login(client, "dana", "wrong")
    response = login(client, "dana", "demo")  # even the right password is refused while limited
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)
    assert "Too many failed login attempts" in response.content.decode()


def test_sign_out_needs_a_post(client, demo_users):
    login(client, "dana")
    client.get("/accounts/logout/")
    assert "_auth_user_id" in client.session
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


def test_pages_need_sign_in(client, db):
    for url in ["/", "/teams/", "/tokens/", "/jobs/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/"), url


def test_api_without_credentials_is_401_or_403_json(client, db):
    response = client.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_unknown_api_path_is_json_404(client, db):
    response = client.get("/api/v1/nope/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_signup_is_closed_by_default(client, db):
    response = client.get("/accounts/signup/")
    assert "closed" in response.content.decode().lower()


@pytest.mark.parametrize(
    ("user", "marker"),
    [
        ("admin", "home-platform-admin"),
        ("dana", "home-team-member"),
        ("eli", "home-team-member"),
        ("rita", "home-risk-approver"),
        ("finn", "home-finance-viewer"),
        ("olga", "home-newcomer"),
    ],
)
def test_home_tells_each_role_where_to_start(client, demo_users, user, marker):
    client.force_login(demo_users[user])
    assert f'data-testid="{marker}"' in client.get("/").content.decode()


def test_seeding_the_demo_twice_duplicates_nothing(demo_users):
    from django.contrib.auth import get_user_model

    from portal.demo import seed_demo
    from portal.models import AuditEvent, Membership, RoleGrant, Team

    counts = lambda: [m.objects.count() for m in (get_user_model(), Team, Membership, RoleGrant, AuditEvent)]  # noqa: E731
    before = counts()
    seed_demo(password="demo")
    assert counts() == before


def test_login_page_does_not_offer_a_closed_sign_up(client, db):
    body = client.get("/accounts/login/").content.decode()
    assert "/accounts/signup/" not in body and "Ask a platform admin" in body
