from __future__ import annotations

import json

from django.db.models import Prefetch
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Model, ModelVersion
from catalog.permissions import require_read
from governance import services
from governance.api import serializers as s
from governance.filtersets import PromotionFilterSet
from governance.models import ApprovalPolicy, EvaluationThreshold, GateResult, Promotion, Vote
from governance.permissions import require_audit_reader
from governance.policy import threshold_set
from governance.webhooks import webhook_create
from portal.models import Team
from portal.permissions import is_platform_admin, require


class Newest(CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"
    ordering = "-created_at"


class ReadableMixin:
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_read(request.user)


def promotions_queryset():
    return Promotion.objects.select_related(
        "model", "model_version__model", "requested_by", "overridden_by"
    ).prefetch_related(
        Prefetch("votes", queryset=Vote.objects.select_related("approver")),
        Prefetch("gate_results", queryset=GateResult.objects.order_by("id")),
    )


def resolve_version(value) -> ModelVersion:
    """A version by id, "<model>/<version>", or {"model": name, "version": n}; 404 when there is none."""
    qs = ModelVersion.objects.select_related("model__team")
    try:
        if isinstance(value, dict):
            found = qs.filter(model__name=value["model"], version=int(value["version"])).first()
        elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            found = qs.filter(pk=int(value)).first()
        elif isinstance(value, str) and "/" in value:
            name, _, number = value.rpartition("/")
            found = qs.filter(model__name=name, version=int(number)).first()
        else:
            raise DRFValidationError({"model_version": 'Give the version\'s id, "<model>/<version>" or an object.'})
    except (KeyError, TypeError, ValueError) as exc:
        raise DRFValidationError(
            {"model_version": 'Give the version\'s id, "<model>/<version>" or an object.'}
        ) from exc
    if found is None:
        raise NotFound(f"No model version {value!r} in the catalog.")
    return found


class PromotionViewSet(ReadableMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Promotion requests: ask, follow the gates, decide, withdraw, override."""

    serializer_class = s.PromotionSerializer
    filterset_class = PromotionFilterSet
    pagination_class = Newest
    action_scopes = {
        "create": "promote",
        "approve": "promote",
        "reject": "promote",
        "withdraw": "promote",
        "override": "promote",
        "recheck": "promote",
        "retry_apply": "promote",
    }

    def get_queryset(self):
        return promotions_queryset()

    def _answer(self, promotion, code=status.HTTP_200_OK) -> Response:
        promotion = promotions_queryset().get(pk=promotion.pk)
        return Response(s.PromotionSerializer(promotion, context={"request": self.request}).data, status=code)

    @extend_schema(
        request=s.PromotionRequestSerializer, responses={201: s.PromotionSerializer, 200: s.PromotionSerializer}
    )
    def create(self, request):
        """Ask to promote a version; an identical open request is returned with 200 instead of a duplicate."""
        body = s.PromotionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mv = resolve_version(body.validated_data["model_version"])
        promotion, created = services.promotion_request(
            actor=request.user,
            model_version=mv,
            environment=body.validated_data["environment"],
            justification=body.validated_data["justification"],
        )
        return self._answer(promotion, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=s.CommentSerializer, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        body = s.CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promotion = services.promotion_decide(
            actor=request.user, promotion=self.get_object(), decision="approve", comment=body.validated_data["comment"]
        )
        return self._answer(promotion)

    @extend_schema(request=s.CommentSerializer, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        body = s.CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promotion = services.promotion_decide(
            actor=request.user, promotion=self.get_object(), decision="reject", comment=body.validated_data["comment"]
        )
        return self._answer(promotion)

    @extend_schema(request=None, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        return self._answer(services.promotion_withdraw(actor=request.user, promotion=self.get_object()))

    @extend_schema(request=None, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"])
    def recheck(self, request, pk=None):
        return self._answer(services.promotion_recheck(actor=request.user, promotion=self.get_object()))

    @extend_schema(request=s.ReasonSerializer, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"])
    def override(self, request, pk=None):
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._answer(
            services.promotion_override(
                actor=request.user, promotion=self.get_object(), reason=body.validated_data["reason"]
            )
        )

    @extend_schema(request=None, responses=s.PromotionSerializer)
    @action(detail=True, methods=["post"], url_path="retry-apply")
    def retry_apply(self, request, pk=None):
        return self._answer(services.promotion_retry_apply(actor=request.user, promotion=self.get_object()))


class RollbackView(ReadableMixin, APIView):
    required_scopes = {"POST": "promote"}

    @extend_schema(request=s.RollbackSerializer, responses={202: s.PromotionSerializer})
    def post(self, request):
        """Return a model in an environment to its previously applied version."""
        body = s.RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = get_object_or_404(Model.objects.select_related("team"), name=body.validated_data["model"])
        promotion = services.rollback_request(
            actor=request.user,
            model=model,
            environment=body.validated_data["environment"],
            reason=body.validated_data["reason"],
        )
        promotion = promotions_queryset().get(pk=promotion.pk)
        return Response(s.PromotionSerializer(promotion, context={"request": request}).data, status=202)


class ThresholdViewSet(ReadableMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Evaluation thresholds: platform defaults and teams' stricter ones."""

    queryset = EvaluationThreshold.objects.select_related("team")
    serializer_class = s.ThresholdSerializer
    pagination_class = None

    @extend_schema(request=s.ThresholdWriteSerializer, responses={201: s.ThresholdSerializer})
    def create(self, request):
        """Set a threshold; a team's may tighten the platform default, never loosen it (400)."""
        body = s.ThresholdWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        team = get_object_or_404(Team, slug=data.pop("team")) if data.get("team") else data.pop("team", None)
        row = threshold_set(actor=request.user, team=team, **data)
        return Response(s.ThresholdSerializer(row).data, status=201)


class ApprovalPolicyViewSet(ReadableMixin, mixins.ListModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """How many approvals each risk tier needs per environment (platform admins edit)."""

    queryset = ApprovalPolicy.objects.all()
    serializer_class = s.ApprovalPolicySerializer
    pagination_class = None
    required_scopes = {"PATCH": "admin", "PUT": "admin"}

    def perform_update(self, serializer):
        from portal.services.audit import audit_record, snapshot

        require(is_platform_admin(self.request.user), "Only platform admins change the approval policy.")
        before = snapshot(serializer.instance)
        row = serializer.save()
        audit_record(action="approval_policy.update", obj=row, before=before, after=snapshot(row))


class WebhookView(ReadableMixin, APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=s.WebhookCreateSerializer, responses={201: dict})
    def post(self, request):
        """Register an outgoing webhook; the signing secret is in this answer only."""
        body = s.WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = webhook_create(actor=request.user, **body.validated_data)
        return Response(
            {"id": endpoint.pk, "url": endpoint.url, "events": endpoint.events, "secret": secret}, status=201
        )


class IgnoreFormatParam(BaseContentNegotiation):
    """``?format=`` names the export's file format here, not an API renderer."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AuditExportView(APIView):
    content_negotiation_class = IgnoreFormatParam

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["jsonl", "csv"], description="file format (default jsonl)"),
            OpenApiParameter("from", str, description="ISO date or time (UTC), inclusive"),
            OpenApiParameter("to", str, description="ISO date (whole day included) or time, exclusive"),
        ],
        responses={(200, "application/x-ndjson"): bytes, (200, "text/csv"): bytes},
    )
    def get(self, request):
        """The audit trail as a file, with a signed digest (headers X-Audit-Digest-Url and X-Export-SHA256)."""
        from portal.services.audit import AuditKeyMissing
        from portal.services.audit_export import audit_export_create

        require_audit_reader(request.user)
        fmt = request.query_params.get("format", "jsonl")
        try:
            export = audit_export_create(
                actor=request.user,
                fmt=fmt,
                since=request.query_params.get("from"),
                until=request.query_params.get("to"),
            )
        except ValueError as exc:
            raise DRFValidationError({"format" if "format" in str(exc) else "from": str(exc)}) from exc
        except AuditKeyMissing as exc:
            raise DRFValidationError({"digest": str(exc)}) from exc
        response = FileResponse(
            export.file, as_attachment=True, filename=export.filename, content_type=export.content_type
        )
        digest_url = request.build_absolute_uri(reverse("governance-audit-digest", args=[export.digest.pk]))
        response["X-Audit-Digest-Url"] = digest_url
        response["X-Export-SHA256"] = json.loads(export.digest.payload)["export_sha256"]
        response["Link"] = f'<{digest_url}>; rel="describedby"'
        return response


class AuditDigestView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        """An export's signed digest: ``payload`` is the exact signed text, ``signature`` Ed25519 (base64)."""
        from portal.models import AuditExportDigest
        from portal.services.audit_export import digest_document

        require_audit_reader(request.user)
        return Response(digest_document(get_object_or_404(AuditExportDigest, pk=pk)))
