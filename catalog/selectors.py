"""Reads: search with facets, and reverse lineage ("what uses X?")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Q

from catalog.models import Dataset, Feature, FeatureVersion, Model, ModelVersion, Project, SearchDoc

SEARCH_KINDS = {"model": Model, "project": Project, "dataset": Dataset, "feature": Feature}
FACETS = ("kind", "team", "task", "framework", "lifecycle", "tag", "alias")
NARROW = ("id", "kind", "name", "team", "task", "framework", "lifecycle", "tags", "aliases")


@dataclass
class SearchResult:
    results: list[dict] = field(default_factory=list)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    count: int = 0


def _matching(params):
    """Index rows matching the text and every filter except ``kind`` (the kind facet counts all kinds)."""
    docs = SearchDoc.objects.all()
    q = (params.get("q") or "").strip().lower()
    if q:
        docs = docs.filter(text__contains=q)
    if params.get("team"):
        docs = docs.filter(team=params["team"])
    if params.get("tag"):
        docs = docs.filter(tags__contains=SearchDoc.join([params["tag"]]))
    if params.get("alias"):
        docs = docs.filter(aliases__contains=SearchDoc.join([params["alias"]]))
    for name in ("lifecycle", "task", "framework"):
        if params.get(name):
            docs = docs.filter(**{f"{name}__iexact": params[name]})
    return docs, q


def _rank(row: dict, q: str) -> int:
    name = row["name"].lower()
    if not q:
        return 0
    if name == q:
        return 100
    if name.startswith(q):
        return 60
    if q in name:
        return 40
    if q in row["tags"].lower():
        return 25
    if row["team"] == q:
        return 20
    return 10


def catalog_search(params, limit: int = 20, offset: int = 0) -> SearchResult:
    """Ranked results and facet counts from the search index: two queries whatever the catalog's size."""
    limit, offset = max(1, min(limit, 100)), max(0, min(offset, 10_000))
    wanted = params.get("kind")
    docs, q = _matching(params)
    facets = {name: Counter() for name in FACETS}
    rows = []
    for row in docs.values(*NARROW):
        facets["kind"][row["kind"]] += 1
        if wanted in SEARCH_KINDS and row["kind"] != wanted:
            continue
        rows.append(row)
        facets["team"][row["team"]] += 1
        for name in ("lifecycle", "task", "framework"):
            if row[name]:
                facets[name][row[name]] += 1
        if row["tags"]:
            facets["tag"].update(SearchDoc.split(row["tags"]))
        if row["aliases"]:
            facets["alias"].update(SearchDoc.split(row["aliases"]))
    rows.sort(key=lambda r: (-_rank(r, q), r["name"]))
    page = rows[offset : offset + limit]
    descriptions = dict(SearchDoc.objects.filter(pk__in=[r["id"] for r in page]).values_list("id", "description"))
    result = SearchResult(count=len(rows))
    for row in page:
        result.results.append(
            {
                "kind": row["kind"],
                "name": row["name"],
                "team": row["team"],
                "description": descriptions.get(row["id"], ""),
                "url": SEARCH_KINDS[row["kind"]](name=row["name"]).get_absolute_url(),
            }
        )
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
