from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


class RiskTier(models.IntegerChoices):
    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"


class PlatformRole(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "platform admin"
    RISK_APPROVER = "risk_approver", "risk approver"
    FINANCE_VIEWER = "finance_viewer", "finance viewer"


class TeamRole(models.TextChoices):
    MEMBER = "member", "member"
    MAINTAINER = "maintainer", "maintainer"


class TeamQuerySet(models.QuerySet):
    def visible_to(self, user) -> TeamQuerySet:
        # Team names are discovery data: every signed-in user may list them.
        if not user or not user.is_authenticated:
            return self.none()
        return self

    def manageable_by(self, user) -> TeamQuerySet:
        from portal.permissions import is_platform_admin

        if not user or not user.is_authenticated:
            return self.none()
        if is_platform_admin(user):
            return self
        return self.filter(memberships__user=user, memberships__role=TeamRole.MAINTAINER).distinct()

    def of_user(self, user) -> TeamQuerySet:
        return self.filter(memberships__user=user)


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use lowercase letters, digits and hyphens (2–50 characters, no leading or trailing hyphen).",
)


class Team(models.Model):
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("team_detail", args=[self.slug])


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=TeamRole.choices, default=TeamRole.MEMBER)
    # Service accounts are the identities behind team CI tokens.
    is_service_account = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class RoleGrantQuerySet(models.QuerySet):
    def for_user(self, user) -> RoleGrantQuerySet:
        return self.filter(user=user)

    def covering(self, *, team: Team, risk_tier: int) -> RoleGrantQuerySet:
        """Risk-approver grants that cover a team and a risk tier."""
        return (
            self.filter(role=PlatformRole.RISK_APPROVER)
            .filter(Q(teams__isnull=True) | Q(teams=team))
            .filter(Q(max_risk_tier__isnull=True) | Q(max_risk_tier__gte=risk_tier))
            .distinct()
        )


class RoleGrant(models.Model):
    """A platform role held by a user; a risk-approver grant may be limited."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_grants")
    role = models.CharField(max_length=30, choices=PlatformRole.choices)
    teams = models.ManyToManyField(Team, blank=True, related_name="+", help_text="Empty means every team.")
    max_risk_tier = models.PositiveSmallIntegerField(
        choices=RiskTier.choices, null=True, blank=True, help_text="Empty means every tier."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RoleGrantQuerySet.as_manager()

    class Meta:
        ordering = ["user__username", "role"]
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="unique_role_grant")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role}"
