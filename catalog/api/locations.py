"""REST API of descriptor locations: /api/v1/catalog/locations/."""

from __future__ import annotations

from django.db.models import CharField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Cast
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.views import CatalogCursor, ReadableMixin
from catalog.models import Location, LocationEntity
from catalog.services import locations as location_service
from catalog.services.descriptors import descriptor_schema
from portal.models import Job, Team


class LocationErrorSerializer(serializers.Serializer):
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class LocationEntitySerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = LocationEntity
        fields = ["kind", "name", "file", "line", "present", "url"]
        read_only_fields = fields


class LocationSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    errors = LocationErrorSerializer(many=True, read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    entities = LocationEntitySerializer(many=True, read_only=True)
    html_url = serializers.CharField(source="get_absolute_url", read_only=True)
    job = serializers.SerializerMethodField(help_text="The latest refresh job (the one just queued, after POST).")
    job_url = serializers.SerializerMethodField()

    class Meta:
        model = Location
        fields = [
            "id",
            "url",
            "team",
            "created_by",
            "created_at",
            "last_refreshed_at",
            "last_commit",
            "status",
            "entity_count",
            "error_count",
            "errors",
            "entities",
            "html_url",
            "job",
            "job_url",
        ]
        read_only_fields = fields

    def get_job(self, obj: Location) -> int | None:
        job = self.context.get("job")
        return job.pk if job is not None else getattr(obj, "latest_job_id", None)

    def get_job_url(self, obj: Location) -> str | None:
        job_id, request = self.get_job(obj), self.context.get("request")
        if job_id is None:
            return None
        url = reverse("job_detail", args=[job_id])
        return request.build_absolute_uri(url) if request else url


class LocationCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="https:// git URL (file:// or a path: platform admins only)")
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())


class LocationViewSet(
    ReadableMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Git repositories whose mlplatform.yaml / model.yaml descriptors feed the catalog.

    POST registers one for a team (members of the team, or platform admins) and queues its first refresh;
    ``refresh/`` queues another. Errors are listed per file and line.
    """

    serializer_class = LocationSerializer
    lookup_value_regex = r"[0-9]+"

    class Cursor(CatalogCursor):
        ordering = "-id"

    pagination_class = Cursor

    def get_queryset(self):
        jobs = Job.objects.filter(
            kind=location_service.REFRESH_KIND,
            target_type__app_label=Location._meta.app_label,
            target_type__model=Location._meta.model_name,
            target_id=Cast(OuterRef("pk"), CharField()),
        ).order_by("-created_at", "-id")
        return (
            Location.objects.visible_to(self.request.user)
            .select_related("team", "created_by")
            .prefetch_related(Prefetch("entities", queryset=LocationEntity.objects.order_by("kind", "name")))
            .annotate(latest_job_id=Subquery(jobs.values("pk")[:1]))
        )

    def initial(self, request: Request, *args, **kwargs) -> None:
        if getattr(self, "action", None) == "descriptor_schema":  # the published schema is public
            viewsets.GenericViewSet.initial(self, request, *args, **kwargs)
            return
        super().initial(request, *args, **kwargs)

    def get_permissions(self):
        if getattr(self, "action", None) == "descriptor_schema":
            return [AllowAny()]
        return super().get_permissions()

    def _with_job(self, location: Location, job: Job) -> dict:
        location = self.get_queryset().get(pk=location.pk)
        return LocationSerializer(location, context=self.get_serializer_context() | {"job": job}).data

    @extend_schema(request=LocationCreateSerializer, responses={201: LocationSerializer})
    def create(self, request: Request) -> Response:
        body = LocationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        location, job = location_service.location_register(actor=request.user, **body.validated_data)
        return Response(self._with_job(location, job), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: LocationSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Queue a refresh: clone, validate, upsert, orphan what disappeared."""
        location = self.get_object()
        job = location_service.location_enqueue_refresh(actor=request.user, location=location)
        return Response(self._with_job(location, job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={200: inline_serializer("DescriptorJsonSchema", fields={"$schema": serializers.CharField()})}
    )
    @action(
        detail=False, methods=["get"], url_path="schema", url_name="schema", pagination_class=None, filter_backends=[]
    )
    def descriptor_schema(self, request: Request) -> Response:
        """The JSON Schema (Draft 2020-12) every descriptor document is validated against."""
        return Response(descriptor_schema(), content_type="application/schema+json")
