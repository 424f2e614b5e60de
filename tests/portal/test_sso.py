import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.models import AuditEvent, Membership, RoleGrant, Team
from portal.permissions import user_roles
from portal.services.sso import parse_group_map, sso_sync_groups

pytestmark = pytest.mark.django_db

MAP = [
    "ml-fraud=team:fraud:member",
    "ml-fraud-leads=team:fraud:maintainer",
    "ml-vision=team:vision:member",
    "risk-office=role:risk_approver",
]


def test_identity_provider_groups_map_to_teams_and_roles(settings, demo_users):
    settings.OIDC_GROUP_MAP = MAP
    olga = demo_users["olga"]
    sso_sync_groups(user=olga, claims={"groups": ["ml-fraud", "ml-fraud-leads", "ml-vision", "risk-office", "other"]})
    assert dict(Membership.objects.filter(user=olga).values_list("team__slug", "role")) == {
        "fraud": "maintainer",
        "vision": "member",
    }
    assert Team.objects.filter(slug="vision").exists()
    assert user_roles(olga) == ["risk_approver"]
    assert AuditEvent.objects.filter(action="membership.sso_sync").count() == 2


def test_groups_removed_at_the_identity_provider_are_removed_here(settings, demo_users):
    settings.OIDC_GROUP_MAP = MAP
    olga = demo_users["olga"]
    sso_sync_groups(user=olga, claims={"groups": ["ml-vision", "risk-office"]})
    sso_sync_groups(user=olga, claims={"userinfo": {"groups": []}})
    assert not Membership.objects.filter(user=olga).exists()
    assert not RoleGrant.objects.filter(user=olga).exists()


def test_unmapped_memberships_are_left_alone(settings, demo_users):
    settings.OIDC_GROUP_MAP = MAP
    eli = demo_users["eli"]
    sso_sync_groups(user=eli, claims={"groups": []})
    assert Membership.objects.filter(user=eli, team__slug="forecasting").exists()


@pytest.mark.parametrize("entry", ["nogroup", "g=team:fraud:owner", "g=role:god", "=team:a:member"])
def test_bad_group_map_fails_loudly(entry):
    with pytest.raises(ImproperlyConfigured):
        parse_group_map([entry])


def test_single_sign_on_button_appears_when_oidc_is_configured(transactional_db):
    import subprocess
    import sys

    from tests.conftest import ROOT, worker_env

    script = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client().get('/accounts/login/').content.decode())"
    )
    env = worker_env() | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "ALLOWED_HOSTS": "testserver",
        "OIDC_SERVER_URL": "https://login.example.com/realms/ml",
        "OIDC_CLIENT_ID": "portal",
        "OIDC_CLIENT_SECRET": "x",
        "OIDC_PROVIDER_NAME": "Company SSO",
    }
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "Company SSO" in out.stdout and "/accounts/oidc/sso/login/" in out.stdout, out.stderr[-2000:]
