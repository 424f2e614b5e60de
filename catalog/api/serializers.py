from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from catalog.models import (
    Dataset,
    DatasetSnapshot,
    Deployment,
    Environment,
    Feature,
    FeatureVersion,
    Lifecycle,
    Model,
    ModelVersion,
    Project,
    WorkloadType,
)
from portal.models import RiskTier, Team

team_field = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())


class TagsField(serializers.ListField):
    child = serializers.CharField(max_length=100)


class EntitySerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    tags = TagsField(required=False)
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()


ENTITY_FIELDS = ["name", "description", "team", "tags", "source", "orphaned", "created_at", "updated_at", "url"]
ENTITY_READ_ONLY = ["source", "orphaned", "created_at", "updated_at"]


class ProjectSerializer(EntitySerializer):
    lifecycle = serializers.ChoiceField(choices=Lifecycle.choices, required=False)

    class Meta:
        model = Project
        fields = [*ENTITY_FIELDS, "repo_url", "lifecycle"]
        read_only_fields = ENTITY_READ_ONLY


class ModelSerializer(EntitySerializer):
    project = serializers.SlugRelatedField(
        slug_field="name", queryset=Project.objects.all(), required=False, allow_null=True
    )
    workload_type = serializers.ChoiceField(choices=WorkloadType.choices, required=False)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    risk_tier_label = serializers.CharField(source="get_risk_tier_display", read_only=True)

    class Meta:
        model = Model
        fields = [
            *ENTITY_FIELDS,
            "project",
            "workload_type",
            "task",
            "framework",
            "risk_tier",
            "risk_tier_label",
            "lifecycle",
            "spec",
            "version_count",
            "latest_version",
        ]
        read_only_fields = [*ENTITY_READ_ONLY, "version_count", "latest_version"]


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    lineage = serializers.SerializerMethodField()
    completeness = serializers.FloatField(read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "run_id",
            "status",
            "aliases",
            "description",
            "metrics",
            "params",
            "code_commit",
            "data_snapshot",
            "feature_versions",
            "features_pinned",
            "image_digest",
            "lineage",
            "completeness",
            "mlflow_created_ms",
            "url",
        ]
        read_only_fields = fields

    def get_lineage(self, mv) -> list[dict]:
        return mv.lineage()


class DatasetSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetSnapshot
        fields = ["digest", "uri", "created_at"]


class DatasetSerializer(EntitySerializer):
    class Meta:
        model = Dataset
        fields = [*ENTITY_FIELDS, "uri"]
        read_only_fields = ENTITY_READ_ONLY


class FeatureVersionSerializer(serializers.ModelSerializer):
    feature = serializers.CharField(source="feature.name", read_only=True)
    previous = serializers.CharField(source="previous.version", default=None, read_only=True)

    class Meta:
        model = FeatureVersion
        fields = [
            "feature",
            "version",
            "description",
            "computation_logic",
            "null_handling",
            "data_type",
            "source_table",
            "changes",
            "previous",
            "created_at",
        ]
        read_only_fields = fields


class FeatureSerializer(EntitySerializer):
    latest_version = serializers.SerializerMethodField()
    served = serializers.SerializerMethodField()

    class Meta:
        model = Feature
        fields = [*ENTITY_FIELDS, "latest_version", "served"]
        read_only_fields = ENTITY_READ_ONLY

    def get_latest_version(self, feature) -> str | None:
        versions = list(feature.versions.all())
        return versions[0].version if versions else None

    def get_served(self, feature) -> dict:
        latest = self.get_latest_version(feature)
        pins = {p.environment: p.version.version for p in feature.pins.all()}
        return {env: pins.get(env, latest) for env in Environment.values}


class FeatureRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    computation_logic = serializers.CharField()
    null_handling = serializers.CharField(max_length=50)
    data_type = serializers.CharField(max_length=50)
    source_table = serializers.CharField(max_length=200)


class FeaturePinSerializer(serializers.Serializer):
    environment = serializers.ChoiceField(choices=Environment.choices)
    version = serializers.CharField(max_length=12, allow_null=True)


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    environment = serializers.ChoiceField(choices=Environment.choices)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "model",
            "version",
            "environment",
            "endpoint",
            "serving_config",
            "replicas",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class SearchResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    team = serializers.CharField()
    description = serializers.CharField()
    url = serializers.CharField()
    api_url = serializers.CharField()


def api_url(kind: str, name: str) -> str:
    route = {
        "model": "catalog-model-detail",
        "project": "catalog-project-detail",
        "dataset": "catalog-dataset-detail",
        "feature": "catalog-feature-detail",
    }[kind]
    return reverse(route, args=[name])
