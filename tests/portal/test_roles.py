import pytest

from portal.models import AuditEvent, PlatformRole, RiskTier, RoleGrant, Team
from portal.services.teams import role_grant_set

pytestmark = pytest.mark.django_db


def test_risk_approver_grant_can_be_limited_to_teams_and_a_maximum_tier(demo_users):
    fraud, credit = Team.objects.get(slug="fraud"), Team.objects.get(slug="credit")
    role_grant_set(
        actor=demo_users["admin"],
        user=demo_users["raj"],
        role=PlatformRole.RISK_APPROVER,
        teams=[fraud],
        max_risk_tier=RiskTier.MEDIUM,
    )

    def covering(team, tier):
        return set(RoleGrant.objects.covering(team=team, risk_tier=tier).values_list("user__username", flat=True))  # noqa: E731

    assert covering(fraud, RiskTier.MEDIUM) == {"rita", "raj"}
    assert covering(fraud, RiskTier.HIGH) == {"rita"}  # above raj's maximum tier
    assert covering(credit, RiskTier.LOW) == {"rita"}  # not raj's team
    event = AuditEvent.objects.filter(action="role_grant.update").latest("seq")
    assert event.after_json == {"user": "raj", "role": "risk_approver", "teams": ["fraud"], "max_risk_tier": 2}


def test_only_platform_admins_grant_roles(demo_users):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        role_grant_set(actor=demo_users["eli"], user=demo_users["eli"], role=PlatformRole.PLATFORM_ADMIN)
    assert not RoleGrant.objects.filter(user=demo_users["eli"]).exists()


def test_writes_through_a_token_are_audited_as_the_token_user(api_client, demo_users, make_token):
    secret = make_token(demo_users["eli"], "write")
    api_client.post(
        "/api/v1/teams/forecasting/members/",
        {"username": "dana"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_X_REQUEST_ID="ci-run-77",
    )
    event = AuditEvent.objects.filter(action="membership.create").latest("seq")
    assert (event.actor, event.request_id, event.client_ip) == ("eli", "ci-run-77", "127.0.0.1")
