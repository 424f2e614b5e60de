"""Reads: search with facets, and reverse lineage ("what uses X?")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Case, IntegerField, Q, Value, When

from catalog.models import Dataset, Deployment, Feature, FeatureVersion, Model, ModelVersion, Project

SEARCH_KINDS = {"model": Model, "project": Project, "dataset": Dataset, "feature": Feature}
MODEL_ONLY = ("task", "framework", "alias")
LIFECYCLE_KINDS = ("model", "project")


@dataclass
class SearchResult:
    results: list[dict] = field(default_factory=list)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    count: int = 0


def _filtered(kind: str, params) -> object | None:
    cls = SEARCH_KINDS[kind]
    if any(params.get(f) for f in MODEL_ONLY) and kind != "model":
        return None
    if params.get("lifecycle") and kind not in LIFECYCLE_KINDS:
        return None
    qs = cls.objects.all()
    if params.get("team"):
        qs = qs.filter(team__slug=params["team"])
    if params.get("tag"):
        qs = qs.filter(tags__icontains=f'"{params["tag"]}"')
    if params.get("lifecycle"):
        qs = qs.filter(lifecycle=params["lifecycle"])
    if kind == "model":
        if params.get("task"):
            qs = qs.filter(task__iexact=params["task"])
        if params.get("framework"):
            qs = qs.filter(framework__iexact=params["framework"])
        if params.get("alias"):
            alias = params["alias"]
            qs = qs.filter(
                Q(pk__in=ModelVersion.objects.filter(aliases__icontains=f'"{alias}"').values("model_id"))
                | Q(pk__in=Deployment.objects.filter(environment=alias).values("model_version__model_id"))
            )
    q = (params.get("q") or "").strip()
    if q:
        qs = qs.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(tags__icontains=q) | Q(team__slug__icontains=q)
        ).annotate(
            rank=Case(
                When(name__iexact=q, then=Value(100)),
                When(name__istartswith=q, then=Value(60)),
                When(name__icontains=q, then=Value(40)),
                When(tags__icontains=q, then=Value(25)),
                When(team__slug__iexact=q, then=Value(20)),
                default=Value(10),
                output_field=IntegerField(),
            )
        )
    else:
        qs = qs.annotate(rank=Value(0, output_field=IntegerField()))
    return qs


def catalog_search(params, limit: int = 20, offset: int = 0) -> SearchResult:
    """Ranked results and facet counts: one query per kind (plus aliases), facets counted in Python."""
    limit, offset = max(1, min(limit, 100)), max(0, min(offset, 10_000))
    wanted = params.get("kind")
    kinds = [wanted] if wanted in SEARCH_KINDS else list(SEARCH_KINDS)
    result = SearchResult()
    facets = {name: Counter() for name in ("kind", "team", "task", "framework", "lifecycle", "tag", "alias")}
    rows: list[dict] = []
    for kind in SEARCH_KINDS:
        qs = _filtered(kind, params)
        if qs is None:
            continue
        if kind not in kinds:
            facets["kind"][kind] = qs.count()
            continue
        fields = ["id", "name", "description", "team__slug", "tags", "rank"]
        if kind in LIFECYCLE_KINDS:
            fields.append("lifecycle")
        if kind == "model":
            fields += ["task", "framework"]
        matched = list(qs.values(*fields))
        facets["kind"][kind] = len(matched)
        result.count += len(matched)
        for row in matched:
            facets["team"][row["team__slug"]] += 1
            facets["tag"].update(t for t in row["tags"] or [] if isinstance(t, str))
            for name in ("lifecycle", "task", "framework"):
                if row.get(name):
                    facets[name][row[name]] += 1
            rows.append(
                {
                    "kind": kind,
                    "name": row["name"],
                    "team": row["team__slug"],
                    "description": (row["description"] or "")[:200],
                    "rank": row["rank"],
                }
            )
        if kind == "model" and matched:
            ids = {row["id"] for row in matched}
            for model_id, aliases in (
                ModelVersion.objects.exclude(aliases=[]).order_by().values_list("model_id", "aliases")
            ):
                if model_id in ids:
                    facets["alias"].update(aliases)
    rows.sort(key=lambda r: (-r["rank"], r["name"]))
    for row in rows[offset : offset + limit]:
        row.pop("rank")
        row["url"] = SEARCH_KINDS[row["kind"]](name=row["name"]).get_absolute_url()
        result.results.append(row)
    result.facets = {name: dict(counter.most_common(20)) for name, counter in facets.items() if counter}
    return result


def _version_rows(versions, extra=None) -> list[dict]:
    rows = []
    for mv in (
        versions.select_related("model__team").prefetch_related("deployments").order_by("model__name", "-version")
    ):
        row = {
            "model": mv.model.name,
            "version": mv.version,
            "team": mv.model.team.slug,
            "aliases": mv.aliases,
            "environments": sorted(d.environment for d in mv.deployments.all()),
            "url": mv.get_absolute_url(),
        }
        rows.append(row | (extra(mv) if extra else {}))
    return rows


def feature_version_used_by(fv: FeatureVersion) -> dict:
    """Model versions trained on this exact feature version (seed 004's postmortem question)."""
    claimed = ModelVersion.objects.filter(
        Q(feature_version_links=fv) | Q(feature_versions__icontains=f'"{fv.version}"')
    ).distinct()
    return {"feature": fv.feature.name, "version": fv.version, "model_versions": _version_rows(claimed)}


def feature_used_by(feature: Feature) -> list[dict]:
    """For each version of a feature, the model versions trained on it: three queries whatever the counts."""
    versions = list(feature.versions.order_by("-created_at", "-id"))
    users = ModelVersion.objects.filter(
        Q(feature_version_links__feature=feature) | Q(feature_versions__has_key=feature.name)
    ).distinct()
    rows = _version_rows(users, extra=lambda mv: {"trained_on": (mv.feature_versions or {}).get(feature.name)})
    return [
        {
            "feature": feature.name,
            "version": fv.version,
            "model_versions": [r for r in rows if r["trained_on"] == fv.version],
        }
        for fv in versions
    ]


def dataset_used_by(dataset: Dataset) -> dict:
    """For each snapshot of a dataset, the model versions trained on it: constant queries."""
    snapshots = list(dataset.snapshots.order_by("-created_at", "-id"))
    wanted = {snap.pk for snap in snapshots}
    users = (
        ModelVersion.objects.filter(dataset_snapshots__dataset=dataset).distinct().prefetch_related("dataset_snapshots")
    )
    rows = _version_rows(
        users, extra=lambda mv: {"snapshot_ids": [s.pk for s in mv.dataset_snapshots.all() if s.pk in wanted]}
    )
    return {
        "dataset": dataset.name,
        "snapshots": [
            {"digest": snap.digest, "model_versions": [r for r in rows if snap.pk in r["snapshot_ids"]]}
            for snap in snapshots
        ],
    }


def commit_used_by(commit: str) -> dict:
    versions = (
        ModelVersion.objects.filter(code_commit__startswith=commit) if len(commit) >= 7 else ModelVersion.objects.none()
    )
    return {"commit": commit, "model_versions": _version_rows(versions)}
