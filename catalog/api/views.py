from __future__ import annotations

from urllib.parse import quote

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import filtersets, selectors
from catalog.api import serializers as s
from catalog.models import Dataset, Deployment, Feature, FeaturePin, FeatureVersion, Model, ModelVersion, Project
from catalog.permissions import require_read
from catalog.selectors import URL_SAFE
from catalog.services import entities as entity_service
from catalog.services import features as feature_service


class CatalogCursor(CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"
    ordering = "name"


class ReadableMixin:
    """Every catalog endpoint: 403 for signed-in users with no team and no role."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_read(request.user)


class EntityViewSet(ReadableMixin, viewsets.ModelViewSet):
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    pagination_class = CatalogCursor
    kind = ""

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        name, team = data.pop("name"), data.pop("team")
        serializer.instance, _ = entity_service.entity_save(
            actor=self.request.user, kind=self.kind, name=name, team=team, **data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("name", None)
        team = data.pop("team", None)
        serializer.instance, _ = entity_service.entity_save(
            actor=self.request.user, kind=self.kind, name=serializer.instance.name, team=team, **data
        )

    def perform_destroy(self, instance):
        entity_service.entity_delete(actor=self.request.user, entity=instance)


class ProjectViewSet(EntityViewSet):
    queryset = Project.objects.select_related("team")
    serializer_class = s.ProjectSerializer
    filterset_class = filtersets.ProjectFilterSet
    kind = "project"


class ModelViewSet(EntityViewSet):
    queryset = Model.objects.select_related("team", "project")
    serializer_class = s.ModelSerializer
    filterset_class = filtersets.ModelFilterSet
    kind = "model"


class DatasetViewSet(EntityViewSet):
    queryset = Dataset.objects.select_related("team")
    serializer_class = s.DatasetSerializer
    filterset_class = filtersets.DatasetFilterSet
    kind = "dataset"

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"], url_path="used-by")
    def used_by(self, request, name=None):
        """Which model versions were trained on this dataset's snapshots."""
        dataset = self.get_object()
        return Response(selectors.dataset_used_by(dataset))


class FeatureViewSet(ReadableMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Features and their immutable versions. POST registers a definition (identical → the existing version)."""

    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    pagination_class = CatalogCursor
    serializer_class = s.FeatureSerializer
    filterset_class = filtersets.FeatureFilterSet

    def get_queryset(self):
        return Feature.objects.select_related("team").prefetch_related(
            Prefetch("versions", queryset=FeatureVersion.objects.order_by("-created_at", "-id")),
            Prefetch("pins", queryset=FeaturePin.objects.select_related("version")),
        )

    @extend_schema(request=s.FeatureRegisterSerializer, responses={201: s.FeatureVersionSerializer})
    def create(self, request):
        body = s.FeatureRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        registered = feature_service.feature_register(actor=request.user, **data)
        return Response(
            s.FeatureVersionSerializer(registered.version).data | {"created": registered.created},
            status=status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK,
        )

    @extend_schema(responses=s.FeatureVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, name=None):
        feature = self.get_object()
        return Response(s.FeatureVersionSerializer(feature.versions.order_by("-created_at", "-id"), many=True).data)

    @extend_schema(request=s.FeaturePinSerializer, responses=s.FeatureSerializer)
    @action(detail=True, methods=["post"])
    def pin(self, request, name=None):
        feature = self.get_object()
        body = s.FeaturePinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        feature_service.feature_pin(actor=request.user, feature=feature, **body.validated_data)
        return Response(s.FeatureSerializer(self.get_queryset().get(pk=feature.pk)).data)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[0-9a-f]{12})/used-by")
    def used_by(self, request, name=None, version=None):
        """Which model versions were trained on this feature version (and where they run)."""
        feature = self.get_object()
        fv = get_object_or_404(FeatureVersion, feature=feature, version=version)
        return Response(selectors.feature_version_used_by(fv))


class ModelVersionViewSet(ReadableMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ModelVersionSerializer
    filterset_class = filtersets.ModelVersionFilterSet

    class Cursor(CatalogCursor):
        ordering = "-id"

    pagination_class = Cursor

    def get_queryset(self):
        return ModelVersion.objects.select_related("model")


class DeploymentViewSet(ReadableMixin, viewsets.ModelViewSet):
    serializer_class = s.DeploymentSerializer
    filterset_class = filtersets.DeploymentFilterSet

    class Cursor(CatalogCursor):
        ordering = "-id"

    pagination_class = Cursor

    def get_queryset(self):
        return Deployment.objects.select_related("model_version__model")

    def _save(self, serializer):
        data = serializer.validated_data
        mv = get_object_or_404(
            ModelVersion.objects.select_related("model__team"),
            model__name=data["model_version"]["model"]["name"],
            version=data["model_version"]["version"],
        )
        serializer.instance = entity_service.deployment_record(
            actor=self.request.user,
            model_version=mv,
            environment=data["environment"],
            endpoint=data.get("endpoint", ""),
            serving_config=data.get("serving_config"),
            replicas=data.get("replicas", 1),
        )

    perform_create = _save
    perform_update = _save

    def perform_destroy(self, instance):
        entity_service.deployment_remove(actor=self.request.user, deployment=instance)


class CommitUsedByView(ReadableMixin, APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, commit: str):
        """Which model versions were trained from this code commit."""
        return Response(selectors.commit_used_by(commit))


class SearchView(ReadableMixin, APIView):
    @extend_schema(responses=s.SearchResultSerializer(many=True))
    def get(self, request):
        try:
            limit = int(request.query_params.get("limit", 20) or 20)
            offset = int(request.query_params.get("offset", 0) or 0)
        except ValueError as exc:
            raise ValidationError({"limit": "limit and offset must be whole numbers."}) from exc
        result = selectors.catalog_search(request.query_params, limit=limit, offset=offset)
        following = offset + len(result.results)
        next_url = None
        if following < result.count and result.results:
            query = request.query_params.copy()
            query["offset"] = str(following)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        # One reverse() per kind, not per row: search is the hottest endpoint.
        base = request.build_absolute_uri("/")[:-1]
        prefixes = {kind: base + s.api_url(kind, "x")[: -len("x/")] for kind in {r["kind"] for r in result.results}}
        return Response(
            {
                "results": [
                    r | {"api_url": f"{prefixes[r['kind']]}{quote(r['name'], safe=URL_SAFE)}/"} for r in result.results
                ],
                "facets": result.facets,
                "count": result.count,
                "next": next_url,
            }
        )


class SyncMlflowView(ReadableMixin, APIView):
    required_scopes = {"POST": "write"}

    @extend_schema(request=None, responses={202: dict})
    def post(self, request):
        """Start an MLflow → catalog sync job (incremental unless {"full": true})."""
        from portal.api.serializers import JobSerializer
        from portal.permissions import is_platform_admin, require
        from portal.services.jobs import job_enqueue

        require(
            request.user.memberships.exists() or is_platform_admin(request.user),
            "Only team members and platform admins start a sync.",
        )
        job = job_enqueue(
            kind="catalog.sync_mlflow",
            title="Sync the catalog from MLflow",
            user=request.user,
            params={"full": bool(request.data.get("full", False))},
        )
        job.refresh_from_db()
        data = JobSerializer(job, context={"request": request}).data
        return Response(data | {"job_url": data["url"]}, status=status.HTTP_202_ACCEPTED)


class MlflowWebhookView(APIView):
    """Receives MLflow model-registry webhooks (HMAC-verified) and queues an incremental sync."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(request=None, responses={202: dict, 401: dict})
    def post(self, request):
        from django.conf import settings

        from catalog.services.webhooks import WebhookRejected, verify_mlflow_signature, webhook_received

        try:
            verify_mlflow_signature(
                secret=settings.MLFLOW_WEBHOOK_SECRET,
                body=request.body,
                signature=request.headers.get("X-MLflow-Signature", ""),
                timestamp=request.headers.get("X-MLflow-Timestamp", ""),
                delivery_id=request.headers.get("X-MLflow-Delivery-Id", ""),
            )
        except WebhookRejected as exc:
            return Response({"message": str(exc), "code": "webhook_rejected"}, status=status.HTTP_401_UNAUTHORIZED)
        job = webhook_received()
        return Response({"queued": bool(job), "job": job.pk if job else None}, status=status.HTTP_202_ACCEPTED)
