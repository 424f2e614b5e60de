"""Governance's additions to other pages: the home page, model and model-version panels."""

from __future__ import annotations

from catalog.permissions import can_read_catalog, can_write
from governance.models import IN_FLIGHT, Drift, Promotion, Status
from portal.home import HomeSection
from portal.permissions import user_roles


def governance_home_section(request) -> HomeSection | None:
    user = request.user
    if not can_read_catalog(user):
        return None
    context = {"awaiting": None, "mine": []}
    if "risk_approver" in user_roles(user):
        awaiting = Promotion.objects.awaiting(user).select_related("model", "model_version", "requested_by")
        context |= {
            "awaiting": list(awaiting.order_by("created_at")[:8]),
            "awaiting_count": awaiting.count(),
            "drift_count": Drift.objects.filter(resolved_at__isnull=True).count(),
        }
    context["mine"] = list(
        Promotion.objects.filter(requested_by=user, status__in=IN_FLIGHT).select_related("model", "model_version")[:8]
    )
    return HomeSection("governance/_home.html", context, order=10 if context["awaiting"] is not None else 100)


def model_version_panel(request, mv) -> HomeSection:
    promotions = list(Promotion.objects.filter(model_version=mv).order_by("-created_at")[:10])
    return HomeSection(
        "governance/_version_panel.html",
        {"mv": mv, "promotions": promotions, "can_request": can_write(request.user, mv.model.team)},
    )


def model_panel(request, model) -> HomeSection:
    applied, seen = [], set()
    for p in (
        Promotion.objects.filter(model=model, status=Status.APPLIED)
        .select_related("model_version")
        .order_by("-applied_at")
    ):
        if p.environment not in seen:
            seen.add(p.environment)
            applied.append(p)
    return HomeSection(
        "governance/_model_panel.html",
        {
            "model": model,
            "applied": applied,
            "drifts": list(Drift.objects.filter(model=model, resolved_at__isnull=True).select_related("model")),
            "can_rollback": can_write(request.user, model.team),
        },
    )
