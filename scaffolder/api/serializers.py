"""Serializers of the scaffolder's API."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from portal.models import Team
from scaffolder import parameters
from scaffolder.models import Run, Template


def _absolute(context: dict, url: str | None) -> str | None:
    request = context.get("request")
    return request.build_absolute_uri(url) if request and url else url


class TemplateSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    parameters = serializers.SerializerMethodField(help_text="The parameters as JSON Schema (Draft 2020-12).")
    html_url = serializers.SerializerMethodField()

    class Meta:
        model = Template
        fields = [
            "id",
            "title",
            "commit",
            "parameters",
            "description",
            "tags",
            "team",
            "url",
            "ref",
            "subdirectory",
            "name_variable",
            "files",
            "pinned_at",
            "created_at",
            "html_url",
        ]
        read_only_fields = fields

    def get_parameters(self, template: Template) -> dict:
        return parameters.parameters_schema(template.variables, template.name_variable)

    def get_html_url(self, template: Template) -> str | None:
        return _absolute(self.context, template.get_absolute_url())


class TemplateListSerializer(TemplateSerializer):
    class Meta(TemplateSerializer.Meta):
        fields = [f for f in TemplateSerializer.Meta.fields if f != "parameters"]
        read_only_fields = fields


class TemplateCreateSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=500, help_text="The git repository (file:// or a path: platform admins, where allowed)."
    )
    ref = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    subdirectory = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True)


class TemplateUpdatedSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    template = TemplateSerializer()


class RunCreateSerializer(serializers.Serializer):
    template = serializers.PrimaryKeyRelatedField(queryset=Template.objects.all())
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    parameters = serializers.DictField(required=False, default=dict, help_text="Values for the template's variables.")


class DryRunRequestSerializer(serializers.Serializer):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    parameters = serializers.DictField(required=False, default=dict)


class DryRunFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    binary = serializers.BooleanField()
    content = serializers.CharField(allow_null=True, help_text="Text files up to 100 kB; null otherwise.")
    link = serializers.CharField(help_text="The target, for a symbolic link.")


class DryRunSerializer(serializers.Serializer):
    name = serializers.CharField()
    files = DryRunFileSerializer(many=True)
    context = serializers.DictField()
    seconds = serializers.FloatField()


class RunSerializer(serializers.ModelSerializer):
    template = serializers.PrimaryKeyRelatedField(read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    project = serializers.SerializerMethodField(help_text="The catalog project's name, once registered.")
    project_url = serializers.SerializerMethodField()
    job_url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    step = serializers.SerializerMethodField(help_text="The next step to run (the failed one, for a failed run).")

    class Meta:
        model = Run
        fields = [
            "id",
            "status",
            "repo_url",
            "project",
            "job_url",
            "name",
            "template",
            "template_commit",
            "team",
            "created_by",
            "parameters",
            "step",
            "error",
            "experiment_id",
            "project_url",
            "html_url",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_project(self, run: Run) -> str | None:
        return run.project.name if run.project_id else None

    def get_project_url(self, run: Run) -> str | None:
        return _absolute(self.context, run.project.get_absolute_url()) if run.project_id else None

    def get_job_url(self, run: Run) -> str | None:
        return _absolute(self.context, reverse("job_detail", args=[run.job_id])) if run.job_id else None

    def get_html_url(self, run: Run) -> str | None:
        return _absolute(self.context, run.get_absolute_url())

    def get_step(self, run: Run) -> str:
        from scaffolder.services.runs import next_step

        return next_step(run)
