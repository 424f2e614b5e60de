"""HTML pages of governance: the risk inbox, requests, the request form, decisions, rollbacks."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.views.decorators.http import require_POST

from catalog.models import Deployment, Environment, Model, ModelVersion
from catalog.permissions import can_write, require_read
from governance import services
from governance.api.views import promotions_queryset
from governance.filtersets import PromotionFilterSet
from governance.forms import DecisionForm, PromotionForm, ReasonForm, RollbackForm
from governance.models import IN_FLIGHT, Drift, Notification, Promotion, Status
from governance.permissions import require_audit_reader
from portal.models import JobLogLine, PlatformRole, RoleGrant
from portal.permissions import is_platform_admin, user_roles
from portal.services.teams import Conflict

LIVE = {Status.CHECKING, Status.APPROVED, Status.APPLYING}
INBOX_PAGE = 10


def _production_versions(model_ids) -> dict[int, ModelVersion]:
    """The version in production per model: one query for any number of models."""
    return {
        d.model_version.model_id: d.model_version
        for d in Deployment.objects.filter(
            environment=Environment.PRODUCTION, model_version__model_id__in=model_ids
        ).select_related("model_version")
    }


def _comparison(p: Promotion, production: ModelVersion | None) -> list[dict]:
    rows = []
    for name, value in sorted((p.model_version.metrics or {}).items()):
        prod = (production.metrics or {}).get(name) if production and production.pk != p.model_version_id else None
        delta = value - prod if isinstance(value, int | float) and isinstance(prod, int | float) else None
        # Formatted here, not with template filters: the inbox renders many of these per page.
        rows.append(
            {
                "name": name,
                "value": _number(value),
                "production": _number(prod),
                "delta": "–" if delta is None else f"{delta:+.4f}",
                "trend": "" if delta is None else "delta-up" if delta >= 0 else "delta-down",
            }
        )
    return rows


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–" if value is None else str(value)


def _latest_gates(p: Promotion) -> list:
    return [g for g in p.gate_results.all() if g.run == p.gate_runs]


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    page = Paginator(
        promotions_queryset().awaiting(request.user).select_related("model__team").order_by("created_at", "id"),
        INBOX_PAGE,
    ).get_page(request.GET.get("page"))
    awaiting = list(page.object_list)
    production = _production_versions({p.model_id for p in awaiting})
    # Each card's repeated parts are built here with format_html, not by template loops and {% url %}:
    # the inbox must stay fast with a thousand open requests (see governance_flow in docs/benchmarks.md).
    urls = {
        name: reverse(f"governance:promotion_{name}", args=[0]).split("/0/", 1)
        for name in ("detail", "approve", "reject")
    }
    items = [_inbox_item(p, production.get(p.model_id), urls) for p in awaiting]
    drifts = list(Drift.objects.filter(resolved_at__isnull=True).select_related("model"))
    is_approver = PlatformRole.RISK_APPROVER in user_roles(request.user)
    return render(
        request,
        "governance/inbox.html",
        {"items": items, "drifts": drifts, "is_approver": is_approver, "page": page},
    )


def _inbox_item(p: Promotion, production: ModelVersion | None, urls: dict[str, list[str]]) -> dict:
    gates = format_html_join(
        "",
        '<li class="gate" data-gate="{}"><span class="status status-{}">{}</span> <strong>{}</strong> — {}</li>',
        (
            (g.gate, "passed" if g.passed else "failed", "passed" if g.passed else "failed", g.title, g.summary)
            for g in _latest_gates(p)
        ),
    )
    metrics = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td class="{}">{}</td></tr>',
        ((m["name"], m["value"], m["production"], m["trend"], m["delta"]) for m in _comparison(p, production)),
    )
    return {
        "p": p,
        "gates": gates,
        "metrics": metrics,
        "production": production,
        "asked": naturaltime(p.created_at),
        "version_url": p.model_version.get_absolute_url(),
        **{f"{name}_url": f"{head}/{p.pk}/{tail}" for name, (head, tail) in urls.items()},
    }


@login_required
def promotion_list(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    filterset = PromotionFilterSet(request.GET or None, queryset=promotions_queryset())
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    return render(request, "governance/promotion_list.html", {"filterset": filterset, "page": page})


def _detail_context(request, p: Promotion) -> dict:
    user = request.user
    production = _production_versions([p.model_id]).get(p.model_id)
    job = (
        p.apply_job
        if p.status in (Status.APPROVED, Status.APPLYING, Status.APPLIED) and p.apply_job_id
        else p.gates_job
    )
    lines = list(JobLogLine.objects.filter(job=job).order_by("-id")[:30])[::-1] if job else []
    covered = RoleGrant.objects.covering(team=p.model.team, risk_tier=p.model.risk_tier).filter(user=user).exists()
    voted = any(v.approver_id == user.pk for v in p.votes.all())
    return {
        "p": p,
        "gates": _latest_gates(p),
        "earlier_gates": [g for g in p.gate_results.all() if g.run != p.gate_runs],
        "metrics": _comparison(p, production),
        "production": production,
        "job": job,
        "lines": lines,
        "live": p.status in LIVE,
        "can_decide": p.status == Status.AWAITING_APPROVAL and covered and not voted and user.pk != p.requested_by_id,
        "can_withdraw": p.is_open and (user.pk == p.requested_by_id or is_platform_admin(user)),
        "can_recheck": p.status == Status.BLOCKED and can_write(user, p.model.team),
        "can_override": p.status == Status.BLOCKED and is_platform_admin(user) and user.pk != p.requested_by_id,
        "can_retry": p.status == Status.APPROVED
        and p.apply_error
        and (is_platform_admin(user) or user.pk == p.requested_by_id),
        "decision_form": DecisionForm(),
        "reason_form": ReasonForm(),
    }


@login_required
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_read(request.user)
    p = get_object_or_404(promotions_queryset().select_related("model__team", "apply_job", "gates_job"), pk=pk)
    context = _detail_context(request, p)
    if request.htmx and request.GET.get("live"):
        return render(request, "governance/promotion_detail.html#live", context)
    return render(request, "governance/promotion_detail.html", context)


@login_required
def promotion_new(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    mv = get_object_or_404(
        ModelVersion.objects.select_related("model__team"),
        pk=request.GET.get("model_version") or request.POST.get("model_version") or 0,
    )
    if not can_write(request.user, mv.model.team):
        raise PermissionDenied(
            f"Only members of team {mv.model.team.slug} (or platform admins) request promotions of its models."
        )
    form = PromotionForm(
        request.POST or None, initial={"model_version": mv.pk, "environment": request.GET.get("environment", "staging")}
    )
    if request.method == "POST" and form.is_valid():
        try:
            p, created = services.promotion_request(
                actor=request.user,
                model_version=mv,
                environment=form.cleaned_data["environment"],
                justification=form.cleaned_data["justification"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            if not created:
                messages.info(request, f"Request #{p.pk} for this version and environment is already open: here it is.")
            return redirect(p)
    open_requests = Promotion.objects.filter(model=mv.model, status__in=IN_FLIGHT).select_related("model_version")
    return render(request, "governance/promotion_form.html", {"form": form, "mv": mv, "open_requests": open_requests})


def _act(request, pk: int, fn, success: str):
    p = get_object_or_404(Promotion.objects.select_related("model__team", "model_version"), pk=pk)
    try:
        p = fn(p)
    except Conflict as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(" ".join(v) for v in exc.message_dict.values()))
    else:
        messages.success(request, success.format(p=p))
    return p


@login_required
@require_POST
def promotion_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    form = DecisionForm(request.POST)
    comment = form.data.get("comment", "")
    p = _act(
        request,
        pk,
        lambda p: services.promotion_decide(actor=request.user, promotion=p, decision=decision, comment=comment),
        "Your vote is recorded: request #{p.pk} is now " + "{p.status}.",
    )
    if request.htmx and request.POST.get("from") == "inbox":
        p = promotions_queryset().select_related("model__team").get(pk=p.pk)
        return render(
            request, "governance/_inbox_decided.html", {"p": p, "messages_now": messages.get_messages(request)}
        )
    return redirect("governance:inbox") if request.POST.get("from") == "inbox" else redirect(p)


@login_required
@require_POST
def promotion_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    p = _act(
        request,
        pk,
        lambda p: services.promotion_withdraw(actor=request.user, promotion=p),
        "Request #{p.pk} withdrawn.",
    )
    return redirect(p)


@login_required
@require_POST
def promotion_recheck(request: HttpRequest, pk: int) -> HttpResponse:
    p = _act(
        request, pk, lambda p: services.promotion_recheck(actor=request.user, promotion=p), "Checking the gates again."
    )
    return redirect(p)


@login_required
@require_POST
def promotion_override(request: HttpRequest, pk: int) -> HttpResponse:
    form = ReasonForm(request.POST)
    reason = form.data.get("reason", "")
    p = _act(
        request,
        pk,
        lambda p: services.promotion_override(actor=request.user, promotion=p, reason=reason),
        "Override recorded; the risk team has been told.",
    )
    return redirect(p)


@login_required
@require_POST
def promotion_retry_apply(request: HttpRequest, pk: int) -> HttpResponse:
    p = _act(request, pk, lambda p: services.promotion_retry_apply(actor=request.user, promotion=p), "Applying again.")
    return redirect(p)


@login_required
def rollback(request: HttpRequest, name: str) -> HttpResponse:
    require_read(request.user)
    model = get_object_or_404(Model.objects.select_related("team"), name=name)
    form = RollbackForm(request.POST or None, initial={"environment": request.GET.get("environment", "production")})
    if request.method == "POST" and form.is_valid():
        try:
            p = services.rollback_request(
                actor=request.user,
                model=model,
                environment=form.cleaned_data["environment"],
                reason=form.cleaned_data["reason"],
            )
        except Conflict as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Rolling {model.name} back to v{p.model_version.version} in {p.environment}.")
            return redirect(p)
    applied = (
        Promotion.objects.filter(model=model, status=Status.APPLIED)
        .select_related("model_version")
        .order_by("-applied_at")[:10]
    )
    return render(request, "governance/rollback_form.html", {"form": form, "model": model, "applied": applied})


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
        return redirect("governance:notifications")
    page = Paginator(Notification.objects.filter(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "governance/notifications.html", {"page": page})


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    """The compliance view of the audit trail: filters, one promotion's whole history, export, verify."""
    from django.db.models import Q

    from portal.models import AuditCheckpoint, AuditEvent, Job
    from portal.services.audit import audit_verify
    from portal.services.audit_export import normalise_bound

    require_audit_reader(request.user)
    filters = {k: request.GET.get(k, "").strip() for k in ("actor", "action", "object", "from", "to")}
    events = AuditEvent.objects.order_by("-seq")
    promotion = None
    if request.GET.get("promotion"):
        promotion = get_object_or_404(Promotion, pk=request.GET["promotion"])
        job_ids = [str(j) for j in (promotion.gates_job_id, promotion.apply_job_id) if j]
        job_ids += [
            str(pk)
            for pk in Job.objects.filter(target_id=str(promotion.pk), kind__startswith="governance.").values_list(
                "pk", flat=True
            )
        ]
        events = events.filter(
            Q(object_type="governance.promotion", object_id=str(promotion.pk))
            | Q(object_type="portal.job", object_id__in=job_ids)
        ).order_by("seq")
    if filters["actor"]:
        events = events.filter(actor=filters["actor"])
    if filters["action"]:
        events = events.filter(action__startswith=filters["action"])
    if filters["object"]:
        kind, _, ident = filters["object"].partition(":")
        events = events.filter(object_type=kind, **({"object_id": ident} if ident else {}))
    try:
        if filters["from"]:
            events = events.filter(timestamp__gte=normalise_bound(filters["from"]))
        if filters["to"]:
            events = events.filter(timestamp__lt=normalise_bound(filters["to"], end=True))
    except ValueError as exc:
        messages.error(request, str(exc))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "promotion": promotion,
        "verify": audit_verify() if request.GET.get("verify") else None,
        "checkpoint": AuditCheckpoint.objects.order_by("-seq").first(),
        "actions": ACTIONS,
        # Exports come with a signed digest: without the key there is nothing to sign it with.
        "can_sign": Path(settings.AUDIT_SIGNING_KEY_FILE).is_file(),
    }
    return render(request, "governance/audit.html", context)


ACTIONS = [
    "promotion.request", "promotion.gates", "promotion.approve", "promotion.reject", "promotion.override",
    "promotion.applied", "promotion.apply_failed", "promotion.rollback", "promotion.withdraw", "drift.detected",
    "audit.export",
]  # fmt: skip


@login_required
def policy(request: HttpRequest) -> HttpResponse:
    """The rules every request is checked against, readable by anyone who may ask for a promotion."""
    from governance.gates import GATES
    from governance.models import ApprovalPolicy, EvaluationThreshold

    require_read(request.user)
    rows = list(ApprovalPolicy.objects.all())
    environments = sorted({r.environment for r in rows}, key=["staging", "production"].index)
    tiers = sorted({r.get_risk_tier_display() for r in rows}, key=["low", "medium", "high"].index)
    matrix = {(r.get_risk_tier_display(), r.environment): r.required_approvals for r in rows}
    return render(
        request,
        "governance/policy.html",
        {
            "gates": [(cls.name, cls.title, (cls.__doc__ or "").strip()) for cls in GATES.values()],
            "environments": environments,
            "approvals": [(tier, [matrix.get((tier, env), "–") for env in environments]) for tier in tiers],
            "thresholds": EvaluationThreshold.objects.select_related("team").order_by("task", "metric", "team__slug"),
        },
    )
