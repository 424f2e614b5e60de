"""Pages of the scaffolder: the gallery, a template's form (live defaults, dry run), a run with its live log."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from catalog.permissions import require_read
from portal.models import JobLogLine
from portal.permissions import is_platform_admin, require
from portal.services.jobs import job_log_since
from portal.services.teams import Conflict
from scaffolder import parameters, selectors
from scaffolder.forms import AUTO, RunForm, TemplateRegisterForm, field_name
from scaffolder.models import STEPS, Run, RunStatus, Template
from scaffolder.services import runs as run_service
from scaffolder.services import templates as template_service
from scaffolder.services.rendering import isolation


@login_required
def gallery(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    admin = is_platform_admin(request.user)
    form = TemplateRegisterForm(request.POST or None) if admin else None
    if request.method == "POST":
        require(admin, "Only platform admins register templates: a template's hooks are code.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                template = template_service.template_register(actor=request.user, **data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Registered “{template.title}” at commit {template.commit[:12]}.")
                return redirect("scaffolder:gallery")
    context = {
        "cards": selectors.template_cards(),
        "runs": Run.objects.visible_to(request.user).select_related("template", "team", "project")[:10],
        "form": form,
        "is_admin": admin,
        "isolation": isolation() if admin else None,
        "adoption": selectors.adoption(),
    }
    return render(request, "scaffolder/gallery.html", context, status=400 if form is not None and form.errors else 200)


@login_required
@require_POST
def template_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(Template, pk=pk)
    before = template.commit
    try:
        template, changed = template_service.template_update(actor=request.user, template=template)
    except ValidationError as exc:
        messages.error(request, f"Could not update “{template.title}”: {' '.join(exc.messages)}")
    else:
        if changed:
            messages.success(request, f"“{template.title}” now pinned to {template.commit[:12]} (was {before[:12]}).")
        else:
            messages.info(request, f"“{template.title}” is already at the latest commit ({template.commit[:12]}).")
    return redirect("scaffolder:gallery")


def _template_for(request: HttpRequest, pk: int) -> Template:
    require_read(request.user)
    return get_object_or_404(Template.objects.visible_to(request.user).select_related("team"), pk=pk)


def _form_page(request, template: Template, form: RunForm, *, status: int = 200, dry=None, dry_error: str = ""):
    context = {
        "template": template,
        "form": form,
        "dry": dry,
        "dry_error": dry_error,
        "name_field": field_name(template.name_variable),
        "name_status": _name_status(form) if form.is_bound else None,
        "api_example": _api_example(request, template),
    }
    return render(request, "scaffolder/form.html", context, status=status)


@login_required
def template_form(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_for(request, pk)
    form = RunForm(request.POST or None, template=template, user=request.user)
    if request.method != "POST":
        return _form_page(request, template, form)
    if not form.is_valid():
        return _form_page(request, template, form, status=400)
    try:
        run, created = run_service.run_create(
            actor=request.user, template=template, team=form.cleaned_data["team"], parameters_given=form.user_values
        )
    except Conflict as exc:
        form.add_error(field_name(template.name_variable), str(exc))
        return _form_page(request, template, form, status=409)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            form.add_service_errors(exc.message_dict)
        else:
            form.add_error(None, exc.messages)
        return _form_page(request, template, form, status=400)
    if created:
        messages.success(request, f"Creating {run.name}: run #{run.pk} is queued.")
    else:
        messages.info(request, f"You already submitted this: showing run #{run.pk}.")
    return redirect(run)


@login_required
@require_POST
def template_dry_run(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_for(request, pk)
    form = RunForm(request.POST, template=template, user=request.user)
    if not form.is_valid():
        return _form_page(request, template, form, status=400)
    try:
        dry = run_service.dry_run(
            actor=request.user, template=template, team=form.cleaned_data["team"], parameters_given=form.user_values
        )
    except ValidationError as exc:
        return _form_page(request, template, form, status=400, dry_error=" ".join(exc.messages))
    return _form_page(request, template, form, dry=dry)


@login_required
@require_POST
def template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the derived defaults recomputed as the user types, and whether the name is free."""
    template = _template_for(request, pk)
    form = RunForm(request.POST, template=template, user=request.user)
    autos = form.auto_values()
    updates = []
    for var in form.variables:
        if var.name not in autos:
            continue
        name = field_name(var.name)
        submitted = request.POST.get(name, "")
        if var.kind == "dict":
            try:
                submitted = json.loads(submitted or "{}")
            except ValueError:
                continue
        if var.kind == "computed" or form.untouched(var.name, submitted):  # not overridden: follow the others
            value = autos[var.name]
            shown = json.dumps(value, indent=2) if isinstance(value, dict) else value
            data = request.POST.copy()
            data[name] = shown
            data[AUTO + var.name] = shown
            bound = RunForm(data, template=template, user=request.user)
            updates.append({"field": bound[name], "auto": bound.auto_field(var.name), "variable": var})
    context = {"updates": updates, "name_status": _name_status(form, autos=autos), "template": template}
    return render(request, "scaffolder/_preview.html", context)


def _name_status(form: RunForm, autos: dict | None = None) -> dict:
    """Is the name valid and free? Shown next to the form, live."""
    template = form.template
    given = form.given_values()
    previewed = parameters.preview(form.config, given)
    name = previewed.context.get(template.name_variable)
    if not isinstance(name, str) or not name:
        return {"ok": False, "message": "The name is computed when the template is rendered."}
    if not parameters.NAME_RE.match(name):
        return {"ok": False, "message": f"“{name}” cannot name a repository. {parameters.NAME_HELP}"}
    team = form.fields["team"].queryset.filter(slug=form.data.get("team")).first()
    if team is not None:
        taken = run_service.name_taken(name, team)
        if taken:
            return {"ok": False, "message": taken}
    return {"ok": True, "message": f"{name} is free: the repository and the catalog project will be called {name}."}


def _api_example(request: HttpRequest, template: Template) -> str:
    url = request.build_absolute_uri(reverse("scaffolder-run-list"))
    return (
        f'curl -H "Authorization: Bearer $PORTAL_TOKEN" -H "Content-Type: application/json" \\\n'
        f'     -d \'{{"template": {template.pk}, "team": "your-team", "parameters": {{…}}}}\' {url}'
    )


@login_required
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_read(request.user)
    run = get_object_or_404(
        Run.objects.visible_to(request.user).select_related("template", "team", "created_by", "project", "job"), pk=pk
    )
    run = run_service.run_reconcile(run)
    after = int(request.GET.get("after", 0) or 0)
    lines: list[JobLogLine] = job_log_since(run.job, after_id=after) if run.job else []
    context = {
        "run": run,
        "job": run.job,
        "steps": selectors.run_steps(run),
        "lines": lines,
        "last_id": lines[-1].id if lines else after,
        "can_act": run_service.can_act(request.user, run),
        "clone_command": f"git clone {run.repo_url}" if run.repo_url else "",
        "mlflow_url": f"{settings.MLFLOW_TRACKING_URI}/#/experiments/{run.experiment_id}" if run.experiment_id else "",
        "failed_step": dict(STEPS)[run_service.next_step(run)],
        "live": run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
    }
    if request.htmx:
        return render(request, "scaffolder/run_detail.html#live", context)
    return render(request, "scaffolder/run_detail.html", context)


@login_required
@require_POST
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.visible_to(request.user), pk=pk)
    try:
        run = run_service.run_retry(actor=request.user, run=run)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Retrying run #{run.pk} from “{dict(STEPS)[run_service.next_step(run)]}”.")
    return redirect(run)


@login_required
@require_POST
def run_discard(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.visible_to(request.user), pk=pk)
    try:
        run = run_service.run_discard(actor=request.user, run=run)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{run.pk} discarded: what it created was removed; {run.name} is free again.")
    return redirect(run)
