"""Demo teams and users. Idempotent: running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from portal.context import audit_context
from portal.models import Membership, PlatformRole, RoleGrant, Team, TeamRole
from portal.services import teams as team_service

User = get_user_model()

TEAMS = [
    ("fraud", "Fraud", "Card-fraud detection models (real-time scoring)."),
    ("forecasting", "Forecasting", "Demand and capacity forecasting models."),
    ("credit", "Credit Risk", "Credit scoring models: high risk tier, two approvals."),
]


@dataclass
class DemoUser:
    username: str
    first_name: str
    role_label: str
    teams: dict[str, str] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    staff: bool = False


USERS = [
    DemoUser("admin", "Ada", "platform admin", roles=[PlatformRole.PLATFORM_ADMIN], staff=True),
    DemoUser("dana", "Dana", "data scientist (member of fraud)", teams={"fraud": TeamRole.MEMBER}),
    DemoUser("eli", "Eli", "ML engineer (maintainer of forecasting)", teams={"forecasting": TeamRole.MAINTAINER}),
    DemoUser("rita", "Rita", "risk approver (all teams)", roles=[PlatformRole.RISK_APPROVER]),
    DemoUser("raj", "Raj", "risk approver (all teams)", roles=[PlatformRole.RISK_APPROVER]),
    DemoUser("finn", "Finn", "finance viewer", roles=[PlatformRole.FINANCE_VIEWER]),
    DemoUser("olga", "Olga", "signed in, no team and no role"),
]


def seed_demo(password: str | None = None) -> list[DemoUser]:
    password = password or settings.DEMO_PASSWORD
    with audit_context(request_id="demo-seed"), transaction.atomic():
        teams = {}
        for slug, name, description in TEAMS:
            team = Team.objects.filter(slug=slug).first()
            teams[slug] = team or team_service.team_create(actor=None, slug=slug, name=name, description=description)
        for spec in USERS:
            user = User.objects.filter(username=spec.username).first()
            if user is None:
                user = team_service.user_create(
                    actor=None,
                    username=spec.username,
                    email=f"{spec.username}@example.com",
                    password=password,
                    first_name=spec.first_name,
                    is_staff=spec.staff,
                    is_superuser=spec.staff,
                )
            elif not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            for slug, role in spec.teams.items():
                if not Membership.objects.filter(team=teams[slug], user=user, role=role).exists():
                    team_service.membership_set(actor=None, team=teams[slug], user=user, role=role)
            for role in spec.roles:
                if not RoleGrant.objects.filter(user=user, role=role).exists():
                    team_service.role_grant_set(actor=None, user=user, role=role)
    return USERS
