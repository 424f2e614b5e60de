"""Promotion requests, their gate results and votes, and the policy the platform team keeps as data."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from catalog.models import Environment, Model, ModelVersion
from portal.models import Job, RiskTier, Team


class Status(models.TextChoices):
    CHECKING = "checking", "checking gates"
    BLOCKED = "blocked", "blocked by a gate"
    AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
    APPROVED = "approved", "approved"
    APPLYING = "applying", "applying"
    APPLIED = "applied", "applied"
    REJECTED = "rejected", "rejected"
    WITHDRAWN = "withdrawn", "withdrawn"
    SUPERSEDED = "superseded", "superseded"
    ROLLED_BACK = "rolled_back", "rolled back"


OPEN = [Status.CHECKING, Status.BLOCKED, Status.AWAITING_APPROVAL]
IN_FLIGHT = [*OPEN, Status.APPROVED, Status.APPLYING]  # not yet finished one way or the other


class ApprovalPolicy(models.Model):
    """How many distinct approvals a promotion needs, per risk tier and environment (edited by the platform team)."""

    risk_tier = models.PositiveSmallIntegerField(choices=RiskTier.choices)
    environment = models.CharField(max_length=20, choices=Environment.choices)
    required_approvals = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["risk_tier", "environment"]
        constraints = [models.UniqueConstraint(fields=["risk_tier", "environment"], name="gov_policy_unique")]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"{self.get_risk_tier_display()} → {self.environment}: {self.required_approvals}"


class Direction(models.TextChoices):
    AT_LEAST = ">=", "at least"
    AT_MOST = "<=", "at most"


class EvaluationThreshold(models.Model):
    """A metric bound per ML task: the platform default (team empty) or a team's stricter one."""

    task = models.CharField(max_length=50, help_text="ML task, e.g. classification; '*' for every task")
    metric = models.CharField(max_length=100)
    direction = models.CharField(max_length=2, choices=Direction.choices)
    value = models.FloatField()
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["task", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["task", "metric", "team"], name="gov_threshold_unique"),
            models.UniqueConstraint(
                fields=["task", "metric"], condition=models.Q(team__isnull=True), name="gov_threshold_default_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task}: {self.metric} {self.direction} {self.value:g}"

    def passes(self, observed: float) -> bool:
        return observed >= self.value if self.direction == Direction.AT_LEAST else observed <= self.value

    def stricter_or_equal(self, other: EvaluationThreshold) -> bool:
        """Whether this bound is at least as demanding as ``other`` (same metric and direction)."""
        return self.value >= other.value if self.direction == Direction.AT_LEAST else self.value <= other.value


class PromotionQuerySet(models.QuerySet):
    def awaiting(self, user):
        """Requests this user may decide now: awaiting approval, not their own, within their grants."""
        from portal.models import RoleGrant

        grants = list(RoleGrant.objects.filter(user=user, role="risk_approver").prefetch_related("teams"))
        if not grants:
            return self.none()
        conditions = []
        for grant in grants:
            part = models.Q()
            teams = [t.pk for t in grant.teams.all()]
            if teams:
                part &= models.Q(model__team_id__in=teams)
            if grant.max_risk_tier:
                part &= models.Q(model__risk_tier__lte=grant.max_risk_tier)
            conditions.append(part)
        qs = self.filter(status=Status.AWAITING_APPROVAL)
        if all(conditions):  # every grant is limited: the request must fall within one of them
            combined = conditions[0]
            for part in conditions[1:]:
                combined |= part
            qs = qs.filter(combined)
        return qs.exclude(requested_by=user).exclude(votes__approver=user)


class Promotion(models.Model):
    """A request to put a model version in an environment, from request to applied (or not)."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="promotions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    justification = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CHECKING, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    required_approvals = models.PositiveSmallIntegerField(default=0)
    gates_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    apply_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    manifest_commit = models.CharField(max_length=64, blank=True)
    apply_error = models.TextField(blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="set on a rollback"
    )
    gate_runs = models.PositiveSmallIntegerField(default=0)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PromotionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one open request per version and environment: the database enforces what double clicks test.
            models.UniqueConstraint(
                fields=["model_version", "environment"],
                condition=models.Q(status__in=OPEN),
                name="gov_one_open_request",
            )
        ]
        indexes = [
            models.Index(fields=["model", "environment", "status"], name="gov_promotion_model_env"),
            # The inbox: awaiting requests, oldest first, one page at a time.
            models.Index(fields=["status", "created_at", "id"], name="gov_promotion_queue"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model.name} v{self.model_version.version} → {self.environment}"

    def get_absolute_url(self) -> str:
        return reverse("governance:promotion_detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def approvals(self) -> int:
        return sum(1 for v in self.votes.all() if v.decision == Vote.APPROVE)


class GateResult(models.Model):
    """What one gate checked, with the thresholds applied and the values observed. Never updated."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="gate_results")
    run = models.PositiveSmallIntegerField(default=1, help_text="1 for the first check, 2 after a re-check…")
    gate = models.CharField(max_length=50)
    title = models.CharField(max_length=100)
    passed = models.BooleanField()
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.gate}: {'passed' if self.passed else 'failed'}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Gate results are immutable: run the gates again instead.")
        super().save(*args, **kwargs)


class Vote(models.Model):
    APPROVE, REJECT = "approve", "reject"

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="votes")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=[(APPROVE, "approve"), (REJECT, "reject")])
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["promotion", "approver"], name="gov_one_vote_each")]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}s #{self.promotion_id}"


class Notification(models.Model):
    """An in-app notice (also sent by e-mail and to webhooks): requests, decisions, applies, overrides, drift."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=30)
    message = models.TextField()
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="gov_notification_unread")]

    def __str__(self) -> str:
        return f"{self.user}: {self.message[:60]}"


class Drift(models.Model):
    """An environment alias in MLflow that points elsewhere than the last applied promotion."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="drifts")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    expected_version = models.PositiveIntegerField(null=True, blank=True)
    observed_version = models.PositiveIntegerField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "environment"], condition=models.Q(resolved_at__isnull=True), name="gov_one_open_drift"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.environment}: v{self.observed_version} ≠ v{self.expected_version}"

    @property
    def message(self) -> str:
        observed = f"v{self.observed_version}" if self.observed_version else "nothing"
        return (
            f"The {self.environment} alias of {self.model.name} points to {observed} in MLflow, "
            f"but the last applied promotion put v{self.expected_version} there."
        )


class WebhookEndpoint(models.Model):
    """An outgoing webhook. Its signing secret is derived from the portal's key and ``salt``: none is stored."""

    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, blank=True, help_text="event names; empty means every event")
    salt = models.CharField(max_length=32)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url
