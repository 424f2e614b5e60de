from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from portal.api import serializers as s
from portal.models import ApiToken, AuditEvent, Job, JobLogLine, Membership, PlatformRole, Scope, Team
from portal.permissions import has_role, is_platform_admin
from portal.services import jobs as job_service
from portal.services import teams as team_service
from portal.services import tokens as token_service
from portal.services.audit import audit_verify

User = get_user_model()


class MeView(APIView):
    @extend_schema(responses=s.MeSerializer, summary="Who am I: user, teams and platform roles")
    def get(self, request):
        return Response(s.MeSerializer(request.user).data)


class TeamViewSet(viewsets.ModelViewSet):
    lookup_field = "slug"
    serializer_class = s.TeamSerializer
    action_scopes = {"create": Scope.ADMIN, "destroy": Scope.ADMIN}

    def get_queryset(self):
        return Team.objects.visible_to(self.request.user).annotate(member_count=Count("memberships"))

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = team_service.team_create(
            actor=self.request.user, slug=data["slug"], name=data["name"], description=data.get("description", "")
        )

    @extend_schema(request=s.TeamUpdateSerializer, responses=s.TeamSerializer)
    def partial_update(self, request, *args, **kwargs):
        team = self.get_object()
        body = s.TeamUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        team = team_service.team_update(actor=request.user, team=team, **body.validated_data)
        return Response(s.TeamSerializer(team).data)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        team_service.team_delete(actor=self.request.user, team=instance)

    @extend_schema(responses=s.MemberSerializer(many=True), request=s.MemberWriteSerializer)
    @action(detail=True, methods=["get", "post"])
    def members(self, request, slug=None):
        team = self.get_object()
        if request.method == "POST":
            body = s.MemberWriteSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            membership = team_service.membership_set(
                actor=request.user, team=team, user=body.validated_data["username"], role=body.validated_data["role"]
            )
            return Response(s.MemberSerializer(membership).data, status=status.HTTP_201_CREATED)
        members = team.memberships.select_related("user").order_by("user__username")
        return Response(s.MemberSerializer(members, many=True).data)

    @extend_schema(request=s.MemberRoleSerializer, responses=s.MemberSerializer)
    @action(detail=True, methods=["patch", "delete"], url_path=r"members/(?P<username>[^/]+)")
    def member(self, request, slug=None, username=None):
        team = self.get_object()
        membership = get_object_or_404(Membership.objects.select_related("user"), team=team, user__username=username)
        if request.method == "DELETE":
            team_service.membership_remove(actor=request.user, team=team, user=membership.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = s.MemberRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = team_service.membership_set(
            actor=request.user, team=team, user=membership.user, role=body.validated_data["role"]
        )
        return Response(s.MemberSerializer(membership).data)


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Personal and team tokens. DELETE revokes (the record stays, for the audit trail)."""

    serializer_class = s.TokenSerializer

    def get_queryset(self):
        return ApiToken.objects.visible_to(self.request.user).select_related("user", "team")

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def create(self, request):
        body = s.TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        created = token_service.token_create(
            actor=request.user,
            name=data["name"],
            scopes=data["scopes"],
            team=data.get("team"),
            expires_in_days=data.get("expires_in_days"),
        )
        payload = s.TokenSerializer(created.token).data | {"token": created.secret}
        return Response(payload, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        token_service.token_revoke(actor=self.request.user, token=instance)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.JobSerializer
    filterset_fields = ["status", "kind"]

    def get_queryset(self):
        return (
            Job.objects.visible_to(self.request.user)
            .select_related("created_by", "target_type")
            .prefetch_related(Prefetch("log_lines", queryset=JobLogLine.objects.order_by("id")))
        )

    @extend_schema(request=s.JobCreateSerializer, responses={202: s.JobSerializer})
    def create(self, request):
        """Start a platform self-test job (platform admins)."""
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform admins start self-test jobs.")
        body = s.JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = job_service.job_enqueue(
            kind=body.validated_data["kind"],
            title="Platform self-test",
            user=request.user,
            params=body.validated_data["params"],
        )
        job.refresh_from_db()
        return Response(s.JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=s.JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = job_service.job_cancel(actor=request.user, job=self.get_object())
        return Response(s.JobSerializer(job, context={"request": request}).data)


class IsAuditReader(BasePermission):
    message = "Only platform admins and risk approvers read the audit trail."

    def has_permission(self, request, view) -> bool:
        return is_platform_admin(request.user) or has_role(request.user, PlatformRole.RISK_APPROVER)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, for platform admins and risk approvers."""

    queryset = AuditEvent.objects.order_by("-seq")
    serializer_class = s.AuditEventSerializer
    permission_classes = [*api_settings.DEFAULT_PERMISSION_CLASSES, IsAuditReader]
    lookup_field = "seq"
    filterset_fields = ["actor", "action", "object_type", "object_id", "request_id"]

    @extend_schema(request=None, responses={200: dict})
    @action(detail=False, methods=["get"])
    def verify(self, request):
        result = audit_verify()
        return Response(
            {
                "ok": result.ok,
                "checked": result.checked,
                "last_seq": result.last_seq,
                "first_bad_seq": result.first_bad_seq,
                "reason": result.reason,
                "checkpoints": result.checkpoints,
                "warnings": result.warnings,
            }
        )


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request, *args, **kwargs):
    return Response({"message": "No such API endpoint.", "code": "not_found"}, status=404)
