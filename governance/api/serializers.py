from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from catalog.models import Environment
from governance.models import ApprovalPolicy, EvaluationThreshold, GateResult, Promotion, Vote


class GateResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = GateResult
        fields = ["gate", "title", "run", "passed", "summary", "details", "created_at"]


class VoteSerializer(serializers.ModelSerializer):
    approver = serializers.CharField(source="approver.username")

    class Meta:
        model = Vote
        fields = ["approver", "decision", "comment", "created_at"]


class PromotionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="model_version.version")
    model_version = serializers.IntegerField(source="model_version_id")
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    overridden_by = serializers.CharField(source="overridden_by.username", default=None)
    gates = serializers.SerializerMethodField()
    votes = VoteSerializer(many=True)
    job_url = serializers.SerializerMethodField(
        help_text="the job of the current stage: the apply job once there is one"
    )
    gates_job_url = serializers.SerializerMethodField()
    apply_job_url = serializers.SerializerMethodField()
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = Promotion
        fields = [
            "id",
            "model",
            "version",
            "model_version",
            "environment",
            "status",
            "justification",
            "requested_by",
            "required_approvals",
            "gates",
            "votes",
            "decided_at",
            "decision_comment",
            "applied_at",
            "manifest_commit",
            "apply_error",
            "override_reason",
            "overridden_by",
            "rollback_of",
            "superseded_by",
            "job_url",
            "gates_job_url",
            "apply_job_url",
            "url",
            "created_at",
        ]
        read_only_fields = fields

    def get_gates(self, p) -> list[dict]:
        latest = [g for g in p.gate_results.all() if g.run == p.gate_runs] if p.gate_runs else []
        return GateResultSerializer(latest, many=True).data

    def _job(self, job_id) -> str | None:
        if not job_id:
            return None
        request = self.context.get("request")
        path = reverse("job-detail", args=[job_id])
        return request.build_absolute_uri(path) if request else path

    def get_job_url(self, p) -> str | None:
        return self._job(p.apply_job_id or p.gates_job_id)

    def get_gates_job_url(self, p) -> str | None:
        return self._job(p.gates_job_id)

    def get_apply_job_url(self, p) -> str | None:
        return self._job(p.apply_job_id)


class PromotionRequestSerializer(serializers.Serializer):
    model_version = serializers.JSONField(
        help_text='the version\'s id, or "<model>/<version>", or {"model": name, "version": n}'
    )
    environment = serializers.ChoiceField(choices=Environment.choices)
    justification = serializers.CharField()


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class RollbackSerializer(serializers.Serializer):
    model = serializers.CharField()
    environment = serializers.ChoiceField(choices=Environment.choices)
    reason = serializers.CharField()


class ThresholdSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = EvaluationThreshold
        fields = ["id", "task", "metric", "direction", "value", "team"]


class ThresholdWriteSerializer(serializers.Serializer):
    task = serializers.CharField()
    metric = serializers.CharField()
    direction = serializers.ChoiceField(choices=[">=", "<="])
    value = serializers.FloatField()
    team = serializers.CharField(required=False, allow_null=True, default=None)


class ApprovalPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalPolicy
        fields = ["id", "risk_tier", "environment", "required_approvals"]


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField(), required=False, default=list)
