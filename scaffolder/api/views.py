"""REST API of the scaffolder: /api/v1/scaffolder/templates/ and /api/v1/scaffolder/runs/."""

from __future__ import annotations

from dataclasses import asdict

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.views import ReadableMixin
from portal.models import Scope
from scaffolder.api import serializers as s
from scaffolder.models import Run, Template
from scaffolder.services import runs as run_service
from scaffolder.services import templates as template_service


def _parameter_errors(exc: DjangoValidationError) -> ValidationError:
    """Variable errors are reported as ``parameters.<variable>``."""
    if not hasattr(exc, "error_dict"):
        return ValidationError({"non_field_errors": exc.messages})
    keyed = {}
    for field, messages in exc.message_dict.items():
        key = field if field in ("team", "template", "non_field_errors", "__all__") else f"parameters.{field}"
        keyed["non_field_errors" if key == "__all__" else key] = messages
    return ValidationError(keyed)


class TemplateViewSet(ReadableMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Golden-path templates: cookiecutter templates in git, pinned to a commit.

    Everyone who reads the catalog lists them; platform admins register them (POST, a token with the
    ``admin`` scope) and pin a newer commit (``refresh/``). ``parameters`` is the form as JSON Schema.
    """

    lookup_value_regex = r"[0-9]+"
    action_scopes = {"create": Scope.ADMIN, "refresh": Scope.ADMIN, "dry_run": Scope.WRITE}

    def get_queryset(self):
        return Template.objects.visible_to(self.request.user).select_related("team")

    def get_serializer_class(self):
        return s.TemplateListSerializer if self.action == "list" else s.TemplateSerializer

    @extend_schema(request=s.TemplateCreateSerializer, responses={201: s.TemplateSerializer})
    def create(self, request: Request) -> Response:
        body = s.TemplateCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        template = template_service.template_register(actor=request.user, **body.validated_data)
        return Response(
            s.TemplateSerializer(template, context={"request": request}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={200: s.TemplateUpdatedSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Fetch the template's ref again and pin the commit it names now (recorded in the audit trail)."""
        template, changed = template_service.template_update(actor=request.user, template=self.get_object())
        data = {"changed": changed, "template": s.TemplateSerializer(template, context={"request": request}).data}
        return Response(data)

    @extend_schema(request=s.DryRunRequestSerializer, responses={200: s.DryRunSerializer})
    @action(detail=True, methods=["post"], url_path="dry-run", url_name="dry-run")
    def dry_run(self, request: Request, pk: str | None = None) -> Response:
        """Render with these values in isolation and return the files; nothing is created."""
        body = s.DryRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = run_service.dry_run(
                actor=request.user,
                template=self.get_object(),
                team=body.validated_data["team"],
                parameters_given=body.validated_data["parameters"],
            )
        except DjangoValidationError as exc:
            raise _parameter_errors(exc) from exc
        files = [asdict(f) for f in result.files]
        return Response({"name": result.name, "files": files, "context": result.context, "seconds": result.seconds})


class RunViewSet(ReadableMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: a project created from a template, as a job (render, repository, commit, push, catalog, MLflow).

    POST answers 202 with the job's URL; the same submission twice returns the same run; a name in use is 409.
    A failed run can be retried (from the step that failed) or discarded (what it made is removed).
    """

    serializer_class = s.RunSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_fields = ["status", "team__slug", "project__name"]

    def get_queryset(self):
        return Run.objects.visible_to(self.request.user).select_related("team", "created_by", "project", "job")

    def get_object(self):
        return run_service.run_reconcile(super().get_object())

    @extend_schema(request=s.RunCreateSerializer, responses={202: s.RunSerializer})
    def create(self, request: Request) -> Response:
        body = s.RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if not Template.objects.visible_to(request.user).filter(pk=data["template"].pk).exists():
            raise ValidationError({"template": ["No such template."]})
        try:
            run, _ = run_service.run_create(
                actor=request.user, template=data["template"], team=data["team"], parameters_given=data["parameters"]
            )
        except DjangoValidationError as exc:
            raise _parameter_errors(exc) from exc
        run = self.get_queryset().get(pk=run.pk)
        return Response(s.RunSerializer(run, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: s.RunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Run a failed run again, from the step that failed."""
        run = run_service.run_retry(actor=request.user, run=self.get_object())
        run = self.get_queryset().get(pk=run.pk)
        return Response(s.RunSerializer(run, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.RunSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        """Give up on a failed run: its repository and catalog entry are removed and the name is free again."""
        run = run_service.run_discard(actor=request.user, run=self.get_object())
        return Response(s.RunSerializer(run, context={"request": request}).data)
