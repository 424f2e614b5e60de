"""Catalog entities: projects, models, versions, datasets, features, deployments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.models import RiskTier, Team


class CatalogQuerySet(models.QuerySet):
    def visible_to(self, user) -> CatalogQuerySet:
        """Discovery is the point: anyone in a team or with a platform role reads the whole catalog."""
        from catalog.permissions import can_read_catalog

        return self if can_read_catalog(user) else self.none()


class Lifecycle(models.TextChoices):
    EXPERIMENTAL = "experimental", "experimental"
    PRODUCTION = "production", "production"
    DEPRECATED = "deprecated", "deprecated"


class Source(models.TextChoices):
    PORTAL = "portal", "portal (API or form)"
    MLFLOW = "mlflow", "MLflow sync"
    LOCATION = "location", "descriptor in git"


class WorkloadType(models.TextChoices):
    INFERENCE = "inference", "inference"
    BATCH = "batch", "batch"
    TRAINING = "training", "training"


class Environment(models.TextChoices):
    STAGING = "staging", "staging"
    PRODUCTION = "production", "production"


name_help = "Unique name, as in MLflow and descriptors."


class CatalogEntity(models.Model):
    name = models.CharField(max_length=200, unique=True, help_text=name_help)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PORTAL)
    orphaned = models.BooleanField(default=False, help_text="Its descriptor disappeared from its location.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    kind = ""

    def get_absolute_url(self) -> str:
        return reverse(f"catalog:{self.kind}_detail", args=[self.name])


class Project(CatalogEntity):
    kind = "project"
    repo_url = models.CharField(max_length=500, blank=True)
    lifecycle = models.CharField(max_length=20, choices=Lifecycle.choices, default=Lifecycle.EXPERIMENTAL)

    class Meta(CatalogEntity.Meta):
        pass


class Model(CatalogEntity):
    """A registered model (MLflow's registered model)."""

    kind = "model"
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    workload_type = models.CharField(max_length=20, choices=WorkloadType.choices, default=WorkloadType.INFERENCE)
    task = models.CharField(
        max_length=50, blank=True, help_text="e.g. classification, regression, forecasting, ranking"
    )
    framework = models.CharField(max_length=50, blank=True)
    risk_tier = models.PositiveSmallIntegerField(choices=RiskTier.choices, default=RiskTier.MEDIUM)
    lifecycle = models.CharField(max_length=20, choices=Lifecycle.choices, default=Lifecycle.EXPERIMENTAL)
    spec = models.JSONField(default=dict, blank=True, help_text="resources, scaling… from model.yaml")
    mlflow_updated_ms = models.BigIntegerField(null=True, blank=True)
    version_count = models.PositiveIntegerField(default=0)
    latest_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta(CatalogEntity.Meta):
        pass


LINEAGE_COMPONENTS = [
    ("code", "Training code commit"),
    ("data", "Data snapshot"),
    ("features", "Feature version snapshot"),
    ("environment", "Training environment"),
    ("params", "Hyperparameters"),
    ("metrics", "Evaluation results"),
]


class ModelVersion(models.Model):
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    run_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=30, blank=True)
    source_uri = models.CharField(max_length=500, blank=True)
    aliases = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    run_tags = models.JSONField(default=dict, blank=True)
    # Lineage, read from the run by the lineage contract (docs/lineage.md)
    code_commit = models.CharField(max_length=64, blank=True, db_index=True)
    data_snapshot = models.CharField(max_length=300, blank=True)
    feature_versions = models.JSONField(default=dict, blank=True)
    features_pinned = models.BooleanField(default=False)
    image_digest = models.CharField(max_length=100, blank=True)
    lineage_complete = models.PositiveSmallIntegerField(default=0, help_text="components present, of 6")
    mlflow_created_ms = models.BigIntegerField(null=True, blank=True)
    mlflow_updated_ms = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dataset_snapshots = models.ManyToManyField("DatasetSnapshot", blank=True, related_name="model_versions")
    feature_version_links = models.ManyToManyField("FeatureVersion", blank=True, related_name="model_versions")

    objects = CatalogQuerySet.as_manager()

    class Meta:
        ordering = ["model__name", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="unique_model_version")]
        # Few versions carry aliases; this index finds them without scanning every version.
        indexes = [models.Index(fields=["model"], condition=~models.Q(aliases=[]), name="catalog_mv_aliased")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("catalog:model_version_detail", args=[self.model.name, self.version])

    def lineage(self) -> list[dict]:
        present = {
            "code": bool(self.code_commit),
            "data": bool(self.data_snapshot),
            "features": bool(self.feature_versions),
            "environment": bool(self.image_digest),
            "params": bool(self.params),
            "metrics": bool(self.metrics),
        }
        return [{"key": key, "label": label, "present": present[key]} for key, label in LINEAGE_COMPONENTS]

    @property
    def completeness(self) -> float:
        return round(self.lineage_complete / len(LINEAGE_COMPONENTS), 3)


class Dataset(CatalogEntity):
    kind = "dataset"
    uri = models.CharField(max_length=500, blank=True)

    class Meta(CatalogEntity.Meta):
        pass


class DatasetSnapshot(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="snapshots")
    digest = models.CharField(max_length=200)
    uri = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset__name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["dataset", "digest"], name="unique_dataset_snapshot")]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.digest}"


class Feature(CatalogEntity):
    kind = "feature"

    class Meta(CatalogEntity.Meta):
        pass


class FeatureVersion(models.Model):
    """An immutable, content-addressed feature definition (seed 004, Implementation 2)."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=12)
    description = models.TextField(blank=True)
    computation_logic = models.TextField()
    null_handling = models.CharField(max_length=50)
    data_type = models.CharField(max_length=50)
    source_table = models.CharField(max_length=200)
    changes = models.JSONField(default=list, blank=True, help_text="What changed from the previous version.")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature__name", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["feature", "version"], name="unique_feature_version")]

    def __str__(self) -> str:
        return f"{self.feature.name}@{self.version}"


class FeaturePin(models.Model):
    """An environment serving a feature version other than the latest."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="pins")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    version = models.ForeignKey(FeatureVersion, on_delete=models.PROTECT, related_name="pins")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feature", "environment"], name="unique_feature_pin")]

    def __str__(self) -> str:
        return f"{self.feature.name} pinned to {self.version.version} in {self.environment}"


class Deployment(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    endpoint = models.CharField(max_length=500, blank=True)
    serving_config = models.JSONField(default=dict, blank=True)
    replicas = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        ordering = ["environment"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "environment"], name="unique_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} in {self.environment}"
