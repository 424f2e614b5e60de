"""Golden-path templates (cookiecutter templates in git) and the runs that create projects from them."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from portal.models import Team


class TemplateQuerySet(models.QuerySet):
    def visible_to(self, user) -> TemplateQuerySet:
        """Whoever reads the catalog may browse templates and start runs for their own teams."""
        from catalog.permissions import can_read_catalog

        return self if can_read_catalog(user) else self.none()


class Template(models.Model):
    """A cookiecutter template at a pinned commit of a git repository (registered by a platform admin)."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The owner team."
    )
    url = models.CharField(max_length=500, help_text="The git repository (same URL rules as catalog locations).")
    ref = models.CharField(max_length=200, blank=True, help_text="Branch, tag or commit; empty: the default branch.")
    subdirectory = models.CharField(max_length=300, blank=True, help_text="Where cookiecutter.json is.")
    commit = models.CharField(max_length=64, help_text="The commit the template is pinned to.")
    # Kept as text: cookiecutter's variable order matters and PostgreSQL's jsonb would not keep it.
    cookiecutter_json = models.TextField()
    name_variable = models.CharField(max_length=100, help_text="The variable the repository and project are named by.")
    files = models.JSONField(default=list, blank=True, help_text="Paths the template produces (for the gallery).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    pinned_at = models.DateTimeField(help_text="When the current commit was recorded.")

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint(fields=["url", "ref", "subdirectory"], name="scaffolder_unique_template_source"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("scaffolder:form", args=[self.pk])

    @property
    def variables(self) -> dict:
        return json.loads(self.cookiecutter_json)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    DISCARDED = "discarded", "discarded"


class RunQuerySet(models.QuerySet):
    def visible_to(self, user) -> RunQuerySet:
        from portal.permissions import is_platform_admin

        if not user or not user.is_authenticated:
            return self.none()
        if is_platform_admin(user):
            return self
        return self.filter(Q(created_by=user) | Q(team__in=Team.objects.of_user(user)))

    def live(self) -> RunQuerySet:
        return self.exclude(status=RunStatus.DISCARDED)


# The steps of a run, in order; ``Run.progress`` records the ones done, so a retry starts at the failed one.
STEPS = [
    ("render", "Render the template"),
    ("repo", "Create the git repository"),
    ("commit", "Initial commit"),
    ("push", "Push"),
    ("register", "Register in the catalog"),
    ("experiment", "Create the MLflow experiment"),
    ("done", "Done"),
]


class Run(models.Model):
    """One project created from a template: who, for which team, with what, and how far it got.

    ``project`` and ``template_commit`` are the adoption record: a catalog project that has a run
    was started on the golden path, from that commit.
    """

    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="runs")
    template_commit = models.CharField(max_length=64)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=100, help_text="The repository's and the catalog project's name.")
    parameters = models.JSONField(default=dict, blank=True, help_text="The values the user gave.")
    context = models.JSONField(default=dict, blank=True, help_text="cookiecutter's final context.")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    progress = models.JSONField(default=dict, blank=True, help_text="Results of the steps done so far.")
    error = models.TextField(blank=True)
    job = models.ForeignKey("portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    repo_url = models.CharField(max_length=500, blank=True)
    project = models.OneToOneField(
        "catalog.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="scaffolder_run"
    )
    experiment_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A double submit cannot create a second project: one live run per name.
            models.UniqueConstraint(
                fields=["name"], condition=~Q(status="discarded"), name="scaffolder_unique_live_run_name"
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("scaffolder:run_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.DISCARDED)
