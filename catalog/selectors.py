"""Reads: search with facets, and reverse lineage ("what uses X?")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from urllib.parse import quote

from django.db import connection
from django.db.models import Q

from catalog.models import Dataset, Feature, FeatureVersion, Model, ModelVersion, Project, SearchDoc
from catalog.models.search import SEPARATOR

SEARCH_KINDS = {"model": Model, "project": Project, "dataset": Dataset, "feature": Feature}
FACETS = ("kind", "team", "task", "framework", "lifecycle", "tag", "alias")
# Columns of the narrow read, in this order: every match is read, so the read is raw SQL over tuples.
ID, KIND, NAME, TEAM, TASK, FRAMEWORK, LIFECYCLE, TAGS, ALIASES = range(9)
URL_SAFE = "!$&'()*+,;=~:@"  # what reverse() leaves unquoted in a path segment
NARROW = "id, kind, name, team, task, framework, lifecycle, tags, aliases"


@dataclass
class SearchResult:
    results: list[dict] = field(default_factory=list)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    count: int = 0


def _where(params) -> tuple[str, list]:
    """SQL conditions for the text and every filter except ``kind`` (the kind facet counts all kinds)."""
    clauses, args = [], []
    q = (params.get("q") or "").strip().lower()
    if q:
        # The text column is stored lower-cased, so a plain substring test is exact. SQLite's instr() is a
        # byte scan, several times faster than LIKE; PostgreSQL's LIKE uses the pg_trgm index.
        if connection.vendor == "sqlite" and len(q) >= 3 and _has_fts():
            # The trigram FTS5 index (migration 0005) finds substrings without reading every row.
            clauses.append(f"id IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s)")
            args.append('"' + q.replace('"', '""') + '"')
        elif connection.vendor == "sqlite":
            clauses.append("instr(text, %s) > 0")
            args.append(q)
        else:
            clauses.append("text LIKE %s")
            args.append("%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if params.get("team"):
        clauses.append("team = %s")
        args.append(params["team"])
    for column, value in (("tags", params.get("tag")), ("aliases", params.get("alias"))):
        if value:  # one whole value of "|a|b|"
            clauses.append(f"{'instr' if connection.vendor == 'sqlite' else 'strpos'}({column}, %s) > 0")
            args.append(SearchDoc.join([value]))
    for column in ("lifecycle", "task", "framework"):
        if params.get(column):
            clauses.append(f"lower({column}) = %s")
            args.append(params[column].lower())
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


FTS = "catalog_searchdoc_fts"
_fts_present: dict[str, bool] = {}


def _has_fts() -> bool:
    """Whether this SQLite database has the trigram index (once per database file and process)."""
    name = str(connection.settings_dict["NAME"])
    if name not in _fts_present:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [FTS])
            _fts_present[name] = cursor.fetchone() is not None
    return _fts_present[name]


def _rank(row: tuple, q: str) -> int:
    name = row[NAME].lower()
    if name == q:
        return 100
    if name.startswith(q):
        return 60
    if q in name:
        return 40
    if q in row[TAGS].lower():
        return 25
    if row[TEAM] == q:
        return 20
    return 10


def _values(joined_values) -> Counter:
    counts = Counter(chain.from_iterable(v.split(SEPARATOR) for v in joined_values if v))
    counts.pop("", None)
    return counts


def catalog_search(params, limit: int = 20, offset: int = 0) -> SearchResult:
    """Ranked results and facet counts from the search index: two queries whatever the catalog's size."""
    limit, offset = max(1, min(limit, 100)), max(0, min(offset, 10_000))
    wanted = params.get("kind")
    q = (params.get("q") or "").strip().lower()
    where, args = _where(params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {NARROW} FROM {SearchDoc._meta.db_table}{where}", args)
        matched = cursor.fetchall()
    facets = {"kind": Counter(map(itemgetter(KIND), matched))}
    rows = [row for row in matched if row[KIND] == wanted] if wanted in SEARCH_KINDS else matched
    for name, column in (("team", TEAM), ("task", TASK), ("framework", FRAMEWORK), ("lifecycle", LIFECYCLE)):
        facets[name] = Counter(map(itemgetter(column), rows))
        facets[name].pop("", None)
    facets["tag"] = _values(map(itemgetter(TAGS), rows))
    facets["alias"] = _values(map(itemgetter(ALIASES), rows))
    rows.sort(key=(lambda r: (-_rank(r, q), r[NAME])) if q else itemgetter(NAME))
    page = rows[offset : offset + limit]
    descriptions = dict(SearchDoc.objects.filter(pk__in=[r[ID] for r in page]).values_list("id", "description"))
    # One reverse() per kind, not per row.
    prefixes = {kind: cls(name="x").get_absolute_url()[: -len("x/")] for kind, cls in SEARCH_KINDS.items()}
    result = SearchResult(count=len(rows))
    result.results = [
        {
            "kind": row[KIND],
            "name": row[NAME],
            "team": row[TEAM],
            "description": descriptions.get(row[ID], ""),
            "url": f"{prefixes[row[KIND]]}{quote(row[NAME], safe=URL_SAFE)}/",
        }
        for row in page
    ]
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
