from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from catalog import filtersets, selectors
from catalog.forms import FeatureForm, ModelForm
from catalog.lineage_graph import lineage_graph
from catalog.models import (
    Dataset,
    Environment,
    Feature,
    FeaturePin,
    FeatureVersion,
    Model,
    ModelVersion,
    Project,
)
from catalog.permissions import can_write, require_read
from catalog.services.entities import entity_save
from catalog.services.features import feature_register, feature_served_version
from portal.models import AuditEvent, Team
from portal.permissions import is_platform_admin, require
from portal.services.jobs import job_enqueue

LISTS = {
    "model": {
        "model": Model,
        "filterset": filtersets.ModelFilterSet,
        "title": "Models",
        "columns": [
            ("name", "Name"),
            ("team", "Team"),
            ("task", "Task"),
            ("framework", "Framework"),
            ("risk_tier", "Risk"),
            ("version_count", "Versions"),
            ("lifecycle", "Lifecycle"),
        ],
        "related": ["team", "project"],
    },
    "project": {
        "model": Project,
        "filterset": filtersets.ProjectFilterSet,
        "title": "Projects",
        "columns": [("name", "Name"), ("team", "Team"), ("lifecycle", "Lifecycle"), ("repo_url", "Repository")],
        "related": ["team"],
    },
    "dataset": {
        "model": Dataset,
        "filterset": filtersets.DatasetFilterSet,
        "title": "Datasets",
        "columns": [("name", "Name"), ("team", "Team"), ("uri", "URI")],
        "related": ["team"],
    },
    "feature": {
        "model": Feature,
        "filterset": filtersets.FeatureFilterSet,
        "title": "Features",
        "columns": [("name", "Name"), ("team", "Team"), ("description", "Description")],
        "related": ["team"],
    },
}


def _cell(obj, field: str) -> str:
    if field == "team":
        return obj.team.slug
    if field == "risk_tier":
        return obj.get_risk_tier_display()
    return getattr(obj, field, "") or ""


@login_required
@vary_on_headers("HX-Request")
def search(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    result = selectors.catalog_search(request.GET, limit=50)
    params = {k: v for k, v in request.GET.items() if v and k != "page"}
    facets = {
        name: [
            {
                "value": value,
                "count": n,
                "active": params.get(name) == value,
                "url": "?"
                + urlencode(
                    {k: v for k, v in params.items() if k != name}
                    | ({} if params.get(name) == value else {name: value})
                ),
            }
            for value, n in counts.items()
        ]
        for name, counts in result.facets.items()
    }
    context = {"result": result, "facets": facets, "q": request.GET.get("q", ""), "params": params}
    template = "catalog/search.html#results" if request.htmx else "catalog/search.html"
    return render(request, template, context)


@login_required
@vary_on_headers("HX-Request")
def entity_list(request: HttpRequest, kind: str) -> HttpResponse:
    require_read(request.user)
    spec = LISTS[kind]
    queryset = spec["model"].objects.select_related(*spec["related"]).order_by("name")
    filterset = spec["filterset"](request.GET or None, queryset=queryset)
    objects = filterset.qs if filterset.is_bound and filterset.is_valid() else queryset
    if request.GET.get("export") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{kind}s.csv"'
        writer = csv.writer(response)
        writer.writerow([label for _, label in spec["columns"]])
        for obj in objects.iterator(chunk_size=2000):
            writer.writerow([_cell(obj, f) for f, _ in spec["columns"]])
        return response
    page = Paginator(objects, 50).get_page(request.GET.get("page"))
    rows = [(obj, [_cell(obj, f) for f, _ in spec["columns"]]) for obj in page.object_list]
    context = {
        "kind": kind,
        "spec": spec,
        "filterset": filterset,
        "page": page,
        "rows": rows,
        "can_sync": kind == "model" and _can_sync(request.user),
    }
    template = "catalog/list.html#table" if request.htmx else "catalog/list.html"
    return render(request, template, context)


def _can_sync(user) -> bool:
    return is_platform_admin(user) or user.memberships.exists()


MODEL_TABS = ["overview", "versions", "lineage", "deployments", "history"]


@login_required
def model_detail(request: HttpRequest, name: str, tab: str = "overview") -> HttpResponse:
    require_read(request.user)
    if tab not in MODEL_TABS:
        raise Http404("No such tab.")
    model = get_object_or_404(Model.objects.select_related("team", "project"), name=name)
    context = {"model": model, "tab": tab, "tabs": MODEL_TABS, "can_write": can_write(request.user, model.team)}
    versions = model.versions.order_by("-version")
    if tab == "overview":
        context["latest"] = versions.only("id", "model_id", "version", "aliases", "lineage_complete").first()
        context["aliased"] = list(versions.exclude(aliases=[]).only("id", "model_id", "version", "aliases")[:20])
        context["maintainers"] = _contacts(model.team)
    elif tab == "versions":
        page = Paginator(versions.values("version", "aliases", "lineage_complete", "metrics", "run_id"), 50).get_page(
            request.GET.get("page")
        )
        # Rows built here, not by per-row template tags: this page must stay fast at 10,000 versions.
        base = reverse("catalog:model_version_detail", args=[model.name, 0])[: -len("0/")]
        context["page"] = page
        context["rows"] = [
            {
                "version": str(v["version"]),  # strings: the template's number localisation is costly at 50 rows
                "url": f"{base}{v['version']}/",
                "aliases": v["aliases"],
                "complete": str(v["lineage_complete"]),
                "tone": "passed"
                if v["lineage_complete"] == 6
                else "pending"
                if v["lineage_complete"] >= 4
                else "failed",
                "metrics": " ".join(
                    f"{k}={val:.3f}" if isinstance(val, int | float) else f"{k}={val}"
                    for k, val in v["metrics"].items()
                ),
                "run": v["run_id"][:8],
            }
            for v in page.object_list
        ]
    elif tab == "lineage":
        version = versions.first()
        return (
            redirect(version.get_absolute_url()) if version else render(request, "catalog/model_detail.html", context)
        )
    elif tab == "deployments":
        context["deployments"] = [
            d
            for v in versions.filter(deployments__isnull=False).prefetch_related("deployments").distinct()
            for d in v.deployments.all()
        ]
    elif tab == "history":
        context["events"] = _history(model)
    return render(request, "catalog/model_detail.html", context)


def _contacts(team) -> list[str]:
    """The owner team's maintainers: who to ask about an entry."""
    return list(
        team.memberships.filter(role="maintainer", is_service_account=False).values_list("user__username", flat=True)
    )


def _history(obj) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("-seq")[:100]
    )


@login_required
def model_version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    require_read(request.user)
    mv = get_object_or_404(
        ModelVersion.objects.select_related("model__team").prefetch_related(
            "deployments", "dataset_snapshots__dataset", "feature_version_links__feature"
        ),
        model__name=name,
        version=version,
    )
    linked = {fv.feature.name: fv for fv in mv.feature_version_links.all()}
    features = [
        {"name": fname, "version": fver, "known": fname in linked and linked[fname].version == fver}
        for fname, fver in sorted(mv.feature_versions.items())
    ]
    production = (
        ModelVersion.objects.filter(model=mv.model, deployments__environment=Environment.PRODUCTION)
        .exclude(pk=mv.pk)
        .first()
        or ModelVersion.objects.filter(model=mv.model, aliases__icontains='"production"').exclude(pk=mv.pk).first()
    )
    metric_rows = [
        {"name": k, "value": v, "production": (production.metrics.get(k) if production else None)}
        for k, v in sorted(mv.metrics.items())
    ]
    snapshots, deployments = list(mv.dataset_snapshots.all()), list(mv.deployments.all())
    context = {
        "model": mv.model,
        "mv": mv,
        "lineage": mv.lineage(),
        "features": features,
        "snapshots": snapshots,
        "deployments": deployments,
        "graph": lineage_graph(mv, features, snapshots, deployments),
        "production": production,
        "metric_rows": metric_rows,
        "tab": "lineage",
        "tabs": MODEL_TABS,
    }
    return render(request, "catalog/model_version.html", context)


@login_required
def feature_detail(request: HttpRequest, name: str) -> HttpResponse:
    require_read(request.user)
    feature = get_object_or_404(
        Feature.objects.select_related("team").prefetch_related(
            Prefetch(
                "versions", queryset=FeatureVersion.objects.select_related("previous").order_by("-created_at", "-id")
            ),
            Prefetch("pins", queryset=FeaturePin.objects.select_related("version")),
        ),
        name=name,
    )
    served = {env: feature_served_version(feature, env) for env in Environment.values}
    context = {
        "feature": feature,
        "versions": list(feature.versions.all()),
        "served": served,
        "used_by": selectors.feature_used_by(feature),
        "events": _history(feature),
        "contacts": _contacts(feature.team),
    }
    return render(request, "catalog/feature_detail.html", context)


@login_required
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    require_read(request.user)
    dataset = get_object_or_404(Dataset.objects.select_related("team"), name=name)
    return render(
        request,
        "catalog/dataset_detail.html",
        {
            "dataset": dataset,
            "used_by": selectors.dataset_used_by(dataset),
            "events": _history(dataset),
            "contacts": _contacts(dataset.team),
        },
    )


@login_required
def project_detail(request: HttpRequest, name: str) -> HttpResponse:
    require_read(request.user)
    project = get_object_or_404(Project.objects.select_related("team"), name=name)
    models = project.models.select_related("team")
    commits = (
        ModelVersion.objects.filter(model__project=project)
        .exclude(code_commit="")
        .values_list("code_commit", flat=True)
        .distinct()[:50]
    )
    return render(
        request,
        "catalog/project_detail.html",
        {
            "project": project,
            "models": models,
            "commits": commits,
            "events": _history(project),
            "contacts": _contacts(project.team),
        },
    )


@login_required
def commit_detail(request: HttpRequest, commit: str) -> HttpResponse:
    require_read(request.user)
    return render(request, "catalog/commit.html", {"used_by": selectors.commit_used_by(commit)})


@login_required
@require_POST
def sync_mlflow(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    require(_can_sync(request.user), "Only team members and platform admins start a sync.")
    job = job_enqueue(
        kind="catalog.sync_mlflow",
        title="Sync the catalog from MLflow",
        user=request.user,
        params={"full": request.POST.get("full") == "1"},
    )
    messages.success(request, f"Sync queued as job #{job.pk}.")
    return redirect(job)


@login_required
def lineage_contract(request: HttpRequest) -> HttpResponse:
    from catalog.services import lineage as contract

    tags = {
        "code": contract.TAG_CODE_COMMIT,
        "data": contract.TAG_DATA_SNAPSHOT,
        "features": contract.TAG_FEATURE_VERSIONS,
        "pinned": contract.TAG_FEATURES_PINNED,
        "environment": contract.TAG_IMAGE_DIGEST,
    }
    model_tags = [
        contract.MODEL_TAG_TEAM,
        contract.MODEL_TAG_PROJECT,
        contract.MODEL_TAG_TASK,
        contract.MODEL_TAG_FRAMEWORK,
        contract.MODEL_TAG_RISK_TIER,
        contract.MODEL_TAG_WORKLOAD,
    ]
    return render(request, "catalog/lineage_contract.html", {"tags": tags, "model_tags": model_tags})


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
def model_edit(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """Register a model, or edit one (its team's members and platform admins)."""
    require_read(request.user)
    model = get_object_or_404(Model.objects.select_related("team", "project"), name=name) if name else None
    teams = Team.objects.all() if is_platform_admin(request.user) else Team.objects.of_user(request.user)
    initial = {}
    if model is not None:
        require(can_write(request.user, model.team), f"Only members of team {model.team.slug} edit this model.")
        initial = {
            f: getattr(model, f)
            for f in (
                "name",
                "description",
                "task",
                "framework",
                "workload_type",
                "risk_tier",
                "lifecycle",
                "project",
                "tags",
            )
        }
        initial["team"] = model.team
    form = ModelForm(request.POST or None, initial=initial, teams=teams)
    if model is not None:
        form.fields["name"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("name")
        try:
            saved, created = entity_save(
                actor=request.user, kind="model", name=model.name if model else form.cleaned_data["name"], **data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Model {saved.name} {'registered' if created else 'saved'}.")
            return redirect(saved)
    return render(
        request,
        "catalog/form.html",
        {
            "form": form,
            "title": f"Edit {model.name}" if model else "Register a model",
            "submit": "Save" if model else "Register model",
        },
    )


@login_required
def feature_new(request: HttpRequest) -> HttpResponse:
    """Register a feature definition: a new feature, or a new version of one (identical → the same version)."""
    require_read(request.user)
    teams = Team.objects.all() if is_platform_admin(request.user) else Team.objects.of_user(request.user)
    initial = {}
    base = Feature.objects.filter(name=request.GET.get("from", "")).select_related("team").first()
    if base is not None:
        latest = base.versions.order_by("-created_at", "-id").first()
        initial = {"name": base.name, "team": base.team, "description": base.description}
        if latest:
            initial |= {
                f: getattr(latest, f) for f in ("computation_logic", "null_handling", "data_type", "source_table")
            }
    form = FeatureForm(request.POST or None, initial=initial, teams=teams)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            registered = feature_register(actor=request.user, **data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            v = registered.version
            messages.success(
                request,
                f"{v.feature.name}: new version {v.version}."
                if registered.created
                else f"{v.feature.name}: identical to version {v.version}, nothing changed.",
            )
            return redirect(v.feature)
    return render(
        request, "catalog/form.html", {"form": form, "title": "Register a feature definition", "submit": "Register"}
    )
