from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Scope(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "write"
    PROMOTE = "promote", "promote"
    ADMIN = "admin", "admin"


# What a scope also grants: admin covers everything, write and promote include read.
SCOPE_IMPLIES = {
    Scope.READ: {Scope.READ},
    Scope.WRITE: {Scope.READ, Scope.WRITE},
    Scope.PROMOTE: {Scope.READ, Scope.PROMOTE},
    Scope.ADMIN: {Scope.READ, Scope.WRITE, Scope.PROMOTE, Scope.ADMIN},
}


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def visible_to(self, user) -> ApiTokenQuerySet:
        from portal.models.identity import Team
        from portal.permissions import is_platform_admin

        if not user or not user.is_authenticated:
            return self.none()
        if is_platform_admin(user):
            return self
        return self.filter(Q(user=user, team__isnull=True) | Q(team__in=Team.objects.manageable_by(user)))


class ApiToken(models.Model):
    """An API token, stored as a SHA-256 digest; the secret is shown once."""

    name = models.CharField(max_length=100)
    # Personal token: user set, team empty. Team token: team set, user is the team's service account.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    team = models.ForeignKey("portal.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    prefix = models.CharField(max_length=16, help_text="The token's first characters, for recognising it.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def granted_scopes(self) -> set[str]:
        granted: set[str] = set()
        for scope in self.scopes:
            granted |= {str(s) for s in SCOPE_IMPLIES.get(Scope(scope), set())}
        return granted
