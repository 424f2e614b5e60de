"""One FilterSet per kind, shared by the HTML lists and the API."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q

from catalog.models import Dataset, Deployment, Environment, Feature, Lifecycle, Model, ModelVersion, Project
from portal.models import RiskTier, Team


def _search(queryset, name, value):
    if not value:
        return queryset
    return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value) | Q(tags__icontains=value))


def _tag(queryset, name, value):
    return queryset.filter(tags__icontains=f'"{value}"') if value else queryset


class EntityFilterSet(filters.FilterSet):
    q = filters.CharFilter(method=_search, label="Search")
    team = filters.ModelChoiceFilter(field_name="team", to_field_name="slug", queryset=Team.objects.all())
    tag = filters.CharFilter(method=_tag, label="Tag")
    orphaned = filters.BooleanFilter()


class ProjectFilterSet(EntityFilterSet):
    lifecycle = filters.ChoiceFilter(choices=Lifecycle.choices)
    ordering = filters.OrderingFilter(fields=("name", "updated_at", "created_at"))

    class Meta:
        model = Project
        fields = ["q", "team", "lifecycle", "tag", "orphaned"]


class ModelFilterSet(EntityFilterSet):
    task = filters.CharFilter(field_name="task", lookup_expr="iexact")
    framework = filters.CharFilter(field_name="framework", lookup_expr="iexact")
    risk_tier = filters.ChoiceFilter(choices=RiskTier.choices)
    lifecycle = filters.ChoiceFilter(choices=Lifecycle.choices)
    project = filters.CharFilter(field_name="project__name")
    alias = filters.CharFilter(method="filter_alias", label="Alias / environment")
    ordering = filters.OrderingFilter(
        fields=("name", "updated_at", "version_count", "risk_tier", ("team__slug", "team")),
    )

    class Meta:
        model = Model
        fields = ["q", "team", "task", "framework", "risk_tier", "lifecycle", "project", "alias", "tag", "orphaned"]

    def filter_alias(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(
            Q(versions__aliases__icontains=f'"{value}"') | Q(versions__deployments__environment=value)
        ).distinct()


class ModelVersionFilterSet(filters.FilterSet):
    model = filters.CharFilter(field_name="model__name")
    run_id = filters.CharFilter()
    code_commit = filters.CharFilter()
    alias = filters.CharFilter(method="filter_alias")
    min_completeness = filters.NumberFilter(field_name="lineage_complete", lookup_expr="gte")
    ordering = filters.OrderingFilter(fields=("version", "mlflow_created_ms", "lineage_complete"))

    class Meta:
        model = ModelVersion
        fields = ["model", "run_id", "code_commit", "alias", "min_completeness"]

    def filter_alias(self, queryset, name, value):
        return queryset.filter(aliases__icontains=f'"{value}"') if value else queryset


class DatasetFilterSet(EntityFilterSet):
    ordering = filters.OrderingFilter(fields=("name", "updated_at"))

    class Meta:
        model = Dataset
        fields = ["q", "team", "tag", "orphaned"]


class FeatureFilterSet(EntityFilterSet):
    ordering = filters.OrderingFilter(fields=("name", "updated_at"))

    class Meta:
        model = Feature
        fields = ["q", "team", "tag", "orphaned"]


class DeploymentFilterSet(filters.FilterSet):
    model = filters.CharFilter(field_name="model_version__model__name")
    environment = filters.ChoiceFilter(choices=Environment.choices)
    team = filters.CharFilter(field_name="model_version__model__team__slug")

    class Meta:
        model = Deployment
        fields = ["model", "environment", "team"]
