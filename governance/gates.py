"""The automated gates: one registry of classes, each checking one thing and saying what it saw.

A gate returns an ``Outcome``: passed or not, one sentence a person can act on,
and the details (what was checked, the thresholds applied, the values
observed), stored immutably as a ``GateResult``. New gate kinds register with
``@register``; the runner knows nothing about any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from django.db.models import Q

from catalog.models import Feature, FeatureVersion
from catalog.services.features import feature_served_version
from governance.models import ApprovalPolicy, EvaluationThreshold, Promotion
from portal.models import RoleGrant

GATES: dict[str, type[Gate]] = {}


@dataclass
class Outcome:
    passed: bool
    summary: str
    details: dict = field(default_factory=dict)


class Gate:
    name: ClassVar[str]
    title: ClassVar[str]

    def check(self, promotion: Promotion) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError


def register(cls: type[Gate]) -> type[Gate]:
    GATES[cls.name] = cls
    return cls


@register
class LineageGate(Gate):
    """All six components of the lineage contract are recorded on the version's MLflow run."""

    name, title = "lineage", "Lineage completeness"

    def check(self, promotion: Promotion) -> Outcome:
        components = promotion.model_version.lineage()
        missing = [c["label"] for c in components if not c["present"]]
        details = {"required": [c["label"] for c in components], "missing": missing, "present": 6 - len(missing)}
        if missing:
            return Outcome(False, f"{len(missing)} of 6 lineage components missing: {', '.join(missing)}.", details)
        return Outcome(True, "All 6 lineage components are recorded on the version's run.", details)


def effective_thresholds(team, task: str) -> list[EvaluationThreshold]:
    """The platform defaults for a task (and '*'), each replaced by the team's own where it has a stricter one."""
    rows = EvaluationThreshold.objects.filter(Q(team__isnull=True) | Q(team=team), task__in=[task, "*"])
    chosen: dict[tuple[str, str], EvaluationThreshold] = {}
    for row in sorted(rows, key=lambda r: r.team_id is not None):  # defaults first, team rows override
        chosen[(row.task, row.metric)] = row
    return sorted(chosen.values(), key=lambda r: (r.metric, r.task))


@register
class EvaluationGate(Gate):
    """Every threshold for the model's ML task holds on the run's metrics."""

    name, title = "evaluation", "Evaluation thresholds"

    def check(self, promotion: Promotion) -> Outcome:
        model, metrics = promotion.model, promotion.model_version.metrics or {}
        thresholds = effective_thresholds(model.team, model.task)
        checks, failures = [], []
        for t in thresholds:
            observed = metrics.get(t.metric)
            ok = isinstance(observed, int | float) and t.passes(observed)
            checks.append(
                {
                    "metric": t.metric,
                    "rule": f"{t.direction} {t.value:g}",
                    "source": f"team {model.team.slug}" if t.team_id else "platform default",
                    "observed": observed,
                    "passed": ok,
                }
            )
            if observed is None:
                failures.append(f"{t.metric} was not logged (needs {t.direction} {t.value:g})")
            elif not ok:
                failures.append(f"{t.metric} = {observed:g}, needs {t.direction} {t.value:g}")
        details = {"task": model.task or "(none)", "checks": checks}
        if not thresholds:
            return Outcome(True, f"No thresholds are set for task {model.task or '(none)'}.", details)
        if failures:
            return Outcome(False, "; ".join(failures) + ".", details)
        return Outcome(True, f"{len(checks)} threshold(s) met for task {model.task}.", details)


FIELDS = [
    ("null_handling", "null handling"),
    ("source_table", "source table"),
    ("computation_logic", "logic"),
    ("data_type", "type"),
]


def _changes(trained: FeatureVersion, served: FeatureVersion) -> list[str]:
    return [
        f"{label} changed: {getattr(trained, attr)} → {getattr(served, attr)}"
        for attr, label in FIELDS
        if getattr(trained, attr) != getattr(served, attr)
    ]


@register
class FeatureParityGate(Gate):
    """The feature versions trained on are those served in the target environment, unless the model pins them."""

    name, title = "feature_parity", "Feature-version parity"

    def check(self, promotion: Promotion) -> Outcome:
        mv, env = promotion.model_version, promotion.environment
        trained_on = mv.feature_versions or {}
        if not trained_on:
            return Outcome(True, "The version records no feature versions, so there is nothing to compare.", {})
        features = {f.name: f for f in Feature.objects.filter(name__in=trained_on)}
        versions = {
            (fv.feature.name, fv.version): fv
            for fv in FeatureVersion.objects.filter(feature__name__in=trained_on).select_related("feature")
        }
        rows, problems = [], []
        for name, version in sorted(trained_on.items()):
            trained = versions.get((name, version))
            served = feature_served_version(features[name], env) if name in features else None
            row = {"feature": name, "trained_on": version, "served": served.version if served else None}
            if trained is None:
                row["problem"] = f"{name}: trained on version {version}, which the catalog does not know"
            elif served is None:
                row["problem"] = f"{name}: nothing is served in {env}"
            elif served.pk != trained.pk:
                row["problem"] = "; ".join(
                    [
                        f"{name}: trained on {trained.version}, serving {served.version} in {env}",
                        *_changes(trained, served),
                    ]
                )
            rows.append(row)
            if "problem" in row:
                problems.append(row["problem"])
        details = {"environment": env, "pinned": mv.features_pinned, "features": rows}
        if problems and mv.features_pinned:
            return Outcome(True, "The model pins its feature versions; serving differs but is not used: "
                           + " | ".join(problems) + ".", details)  # fmt: skip
        if problems:
            return Outcome(False, " | ".join(problems) + ".", details)
        return Outcome(True, f"{len(rows)} feature version(s) trained on are the ones served in {env}.", details)


@register
class RiskPolicyGate(Gate):
    """Decides how many approvals the request needs (table below) and checks that enough approvers cover it."""

    name, title = "risk_policy", "Risk-tier approval policy"

    def check(self, promotion: Promotion) -> Outcome:
        model = promotion.model
        policy = ApprovalPolicy.objects.filter(risk_tier=model.risk_tier, environment=promotion.environment).first()
        required = policy.required_approvals if policy else 1
        approvers = sorted(
            {
                g.user.username
                for g in RoleGrant.objects.covering(team=model.team, risk_tier=model.risk_tier).select_related("user")
                if g.user_id != promotion.requested_by_id
            }
        )
        details = {
            "risk_tier": model.get_risk_tier_display(),
            "environment": promotion.environment,
            "required_approvals": required,
            "policy": "platform policy" if policy else "no policy row: one approval by default",
            "eligible_approvers": approvers,
        }
        if required and len(approvers) < required:
            return Outcome(
                False,
                f"Needs {required} approval(s) but only {len(approvers)} approver(s) cover this request.",
                details,
            )
        noun = "approval" if required == 1 else "approvals"
        summary = f"{required} {noun} needed ({model.get_risk_tier_display()} risk → {promotion.environment})"
        return Outcome(True, summary + (f" from: {', '.join(approvers)}." if required else "."), details)
