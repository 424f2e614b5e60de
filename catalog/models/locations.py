"""Descriptor locations: git repositories whose mlplatform.yaml / model.yaml files feed the catalog."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from catalog.models.entities import CatalogQuerySet
from portal.models import Team


class LocationStatus(models.TextChoices):
    PENDING = "pending", "pending (never refreshed)"
    OK = "ok", "ok"
    WARNING = "warning", "warning (some documents have errors)"
    FAILED = "failed", "failed (the repository could not be read)"


class Location(models.Model):
    """A registered git repository; a refresh clones it and upserts the entities its descriptors declare."""

    url = models.CharField(max_length=500, unique=True, help_text="https:// git URL (file:// for platform admins).")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="catalog_locations")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_commit = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=LocationStatus.choices, default=LocationStatus.PENDING)
    errors = models.JSONField(default=list, blank=True, help_text="[{file, line, message}] of the last refresh")
    entity_count = models.PositiveIntegerField(default=0)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def get_absolute_url(self) -> str:
        return reverse("catalog:location_detail", args=[self.pk])

    @property
    def error_count(self) -> int:
        return len(self.errors or [])


class LocationEntity(models.Model):
    """An entity a location declared; ``present`` is False once its descriptor disappeared (it is orphaned)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="entities")
    kind = models.CharField(max_length=20)  # project, model, dataset, feature
    name = models.CharField(max_length=200)
    file = models.CharField(max_length=500)
    line = models.PositiveIntegerField(default=1)
    present = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["location", "kind", "name"], name="unique_location_entity"),
        ]
        indexes = [models.Index(fields=["kind", "name"], name="location_entity_kind_name")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.file}:{self.line})"

    def get_absolute_url(self) -> str:
        return reverse(f"catalog:{self.kind}_detail", args=[self.name])
