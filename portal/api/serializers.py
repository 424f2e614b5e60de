from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from portal.models import ApiToken, AuditEvent, Job, Membership, Scope, Team, TeamRole
from portal.permissions import user_roles

User = get_user_model()


class TeamRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField()
    teams = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    def get_teams(self, user) -> list[dict]:
        memberships = Membership.objects.filter(user=user).select_related("team").order_by("team__slug")
        return [{"slug": m.team.slug, "name": m.team.name, "role": m.role} for m in memberships]

    def get_roles(self, user) -> list[str]:
        return user_roles(user)


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "email", "role", "is_service_account", "created_at"]
        read_only_fields = ["is_service_account", "created_at"]


class MemberWriteSerializer(serializers.Serializer):
    username = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True))
    role = serializers.ChoiceField(choices=TeamRole.choices, default=TeamRole.MEMBER)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=TeamRole.choices)


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["slug", "name", "description", "members", "created_at"]
        read_only_fields = ["created_at"]

    def get_members(self, team) -> int:
        return getattr(team, "member_count", None) or team.memberships.count()


class TeamUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "team",
            "scopes",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False, default=[Scope.READ]
    )
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(
        min_value=0, max_value=3650, required=False, help_text="0 means the token never expires."
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret, shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    log = serializers.SerializerMethodField()
    started_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    target = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "title",
            "status",
            "steps",
            "log",
            "result",
            "error",
            "started_by",
            "target",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "attempts",
            "url",
        ]
        read_only_fields = fields

    def get_log(self, job) -> list[dict]:
        return [
            {"id": line.id, "time": line.created_at, "level": line.level, "step": line.step, "message": line.message}
            for line in job.log_lines.all()
        ]

    def get_target(self, job) -> dict | None:
        if not job.target_type_id:
            return None
        return {"type": job.target_type.model, "id": job.target_id}

    def get_url(self, job) -> str:
        request = self.context.get("request")
        url = job.get_absolute_url()
        return request.build_absolute_uri(url) if request else url


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["portal.selftest"])
    params = serializers.DictField(required=False, default=dict)


class AuditEventSerializer(serializers.ModelSerializer):
    before = serializers.JSONField(source="before_json", read_only=True)
    after = serializers.JSONField(source="after_json", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "timestamp",
            "actor",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
            "client_ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
