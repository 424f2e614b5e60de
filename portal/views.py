from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from portal.forms import MemberForm, TeamForm, TokenForm
from portal.health import health_report
from portal.home import home_sections
from portal.models import (
    ApiToken,
    AuditCheckpoint,
    AuditEvent,
    Job,
    JobStatus,
    Membership,
    PlatformRole,
    Team,
    TeamRole,
)
from portal.permissions import can_manage_team, has_role, is_platform_admin, require, user_roles
from portal.services import jobs as job_service
from portal.services import teams as team_service
from portal.services import tokens as token_service
from portal.services.audit import audit_export_lines, audit_verify
from portal.services.teams import Conflict


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    memberships = list(Membership.objects.filter(user=user).select_related("team"))
    roles = user_roles(user)
    context = {
        "memberships": memberships,
        "roles": roles,
        "role_labels": [PlatformRole(r).label for r in roles],
        "is_admin": PlatformRole.PLATFORM_ADMIN in roles,
        "is_risk": PlatformRole.RISK_APPROVER in roles,
        "is_finance": PlatformRole.FINANCE_VIEWER in roles,
        "is_maintainer": any(m.role == TeamRole.MAINTAINER for m in memberships),
        "recent_jobs": Job.objects.visible_to(user).select_related("created_by")[:5],
        "token_count": ApiToken.objects.filter(user=user, team__isnull=True).active().count(),
        "sections": home_sections(request),
    }
    return render(request, "portal/home.html", context)


# --- Teams ------------------------------------------------------------------------


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST":
        require(is_platform_admin(request.user), "Only platform admins create teams.")
        if form.is_valid():
            try:
                team = team_service.team_create(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errs in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errs)
            else:
                messages.success(request, f"Team {team.name} created.")
                return redirect(team)
    teams = Team.objects.visible_to(request.user).annotate(member_count=Count("memberships"))
    mine = set(Membership.objects.filter(user=request.user).values_list("team_id", flat=True))
    return render(
        request,
        "portal/team_list.html",
        {"teams": teams, "mine": mine, "form": form, "can_create": is_platform_admin(request.user)},
    )


@login_required
@vary_on_headers("HX-Request")
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team.objects.visible_to(request.user), slug=slug)
    can_manage = can_manage_team(request.user, team)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        require(can_manage, "Only the team's maintainers or platform admins manage members.")
        if form.is_valid():
            membership = team_service.membership_set(
                actor=request.user, team=team, user=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
            messages.success(request, f"{membership.user.username} is now a {membership.role} of {team.name}.")
            return redirect(team)
    members = team.memberships.select_related("user").order_by("is_service_account", "user__username")
    context = {"team": team, "members": members, "can_manage": can_manage, "form": form, "roles": TeamRole.choices}
    template = (
        "portal/team_detail.html#members" if request.htmx and request.method == "GET" else "portal/team_detail.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def team_member_update(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    team = get_object_or_404(Team.objects.visible_to(request.user), slug=slug)
    membership = get_object_or_404(Membership.objects.select_related("user"), team=team, user__username=username)
    try:
        if request.POST.get("action") == "remove":
            team_service.membership_remove(actor=request.user, team=team, user=membership.user)
            messages.success(request, f"{username} removed from {team.name}.")
        else:
            team_service.membership_set(
                actor=request.user, team=team, user=membership.user, role=request.POST.get("role", "")
            )
            messages.success(request, f"{username} is now a {request.POST.get('role')} of {team.name}.")
    except (Conflict, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect(team)


# --- Tokens -----------------------------------------------------------------------


NEW_TOKEN_COOKIE = "portal_new_token"


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """Create and list tokens. After a create we redirect (no double submit on reload) and
    show the secret once from a short-lived signed cookie, so it never rests in the database."""
    manageable = list(Team.objects.manageable_by(request.user))
    form = TokenForm(request.POST or None, teams=manageable)
    if request.method == "POST" and form.is_valid():
        try:
            created = token_service.token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                team=form.cleaned_data["owner"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except PermissionDenied as exc:
            form.add_error("scopes", str(exc))
        except (ValidationError, ValueError) as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Token {created.token.name} created. Copy it now: it is not shown again.")
            response = redirect("token_list")
            response.set_signed_cookie(
                NEW_TOKEN_COOKIE,
                f"{created.token.pk}:{created.secret}",
                salt=NEW_TOKEN_COOKIE,
                max_age=120,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure(),
                path="/tokens/",
            )
            return response
    tokens = ApiToken.objects.visible_to(request.user).select_related("user", "team")
    created = None
    raw = request.get_signed_cookie(NEW_TOKEN_COOKIE, default=None, salt=NEW_TOKEN_COOKIE, max_age=120)
    if raw and request.method == "GET":
        pk, _, secret = raw.partition(":")
        token = next((t for t in tokens if str(t.pk) == pk), None)
        created = {"token": token, "secret": secret} if token else None
    response = render(request, "portal/tokens.html", {"form": form, "tokens": tokens, "created": created})
    if raw:
        response.delete_cookie(NEW_TOKEN_COOKIE, path="/tokens/", samesite="Strict")
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.visible_to(request.user), pk=pk)
    token_service.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token {token.name} revoked; it no longer authenticates.")
    return redirect("token_list")


# --- Jobs -------------------------------------------------------------------------


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible_to(request.user).select_related("created_by")
    status = request.GET.get("status", "")
    if status:
        jobs = jobs.filter(status=status)
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/job_list.html",
        {"page": page, "status": status, "statuses": JobStatus.values, "can_start": is_platform_admin(request.user)},
    )


@login_required
@require_POST
def job_selftest(request: HttpRequest) -> HttpResponse:
    require(is_platform_admin(request.user), "Only platform admins start the self-test.")
    job = job_service.job_enqueue(
        kind="portal.selftest", title="Platform self-test", user=request.user, params={"pause_seconds": 1.0}
    )
    messages.success(request, f"Job #{job.pk} queued.")
    return redirect(job)


@login_required
@vary_on_headers("HX-Request")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.visible_to(request.user).select_related("created_by"), pk=pk)
    after = int(request.GET.get("after", 0) or 0)
    lines = job_service.job_log_since(job, after_id=after)
    context = {
        "job": job,
        "lines": lines,
        "last_id": lines[-1].id if lines else after,
        "can_cancel": not job.is_finished and (is_platform_admin(request.user) or job.created_by_id == request.user.pk),
    }
    if request.htmx:
        return render(request, "portal/job_detail.html#live", context)
    return render(request, "portal/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=pk)
    job = job_service.job_cancel(actor=request.user, job=job)
    messages.info(
        request, f"Job #{job.pk}: cancellation requested." if not job.is_finished else f"Job #{job.pk} cancelled."
    )
    return redirect(job)


# --- Audit ------------------------------------------------------------------------


def _require_audit_reader(user) -> None:
    require(
        is_platform_admin(user) or has_role(user, PlatformRole.RISK_APPROVER),
        "Only platform admins and risk approvers read the audit trail.",
    )


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    _require_audit_reader(request.user)
    events = AuditEvent.objects.order_by("-seq")
    for name in ("actor", "action", "object_type", "object_id"):
        if request.GET.get(name):
            events = events.filter(**{name: request.GET[name]})
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    verify = audit_verify() if request.GET.get("verify") else None
    return render(
        request,
        "portal/audit.html",
        {
            "page": page,
            "verify": verify,
            "checkpoint": AuditCheckpoint.objects.order_by("-seq").first(),
            "filters": {k: request.GET.get(k, "") for k in ("actor", "action", "object_type", "object_id")},
        },
    )


@login_required
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    _require_audit_reader(request.user)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(audit_export_lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.jsonl"'
    return response
