"""Read MLflow's model registry into the catalog: models, versions, aliases and run lineage.

Incremental by default. A registered model is re-read (versions and runs) only if it is new,
its ``last_updated_timestamp`` moved, its aliases changed or one of its versions was still
pending registration. MLflow bumps the timestamp for a
new or deleted version and for a description edit, but not for aliases, registered-model tags,
version tags or run tags. Model-level fields come from the registered model's tags, which are
in the listing anyway, so they are compared in memory on every sync. Pass ``full=True`` to
re-read everything, for example after run tags were added later.

Models are read and written in groups of MODEL_CHUNK: one ``search_model_versions`` call for the
group's versions (``name IN (...)``), runs in batches (``attributes.run_id IN (...)``, RUN_CHUNK
ids per call), never one call per version; then one transaction with bulk inserts and updates, an
audit event per created or changed model and version (appended in one batch), and each model's
``mlflow_updated_ms`` in the same transaction as its versions, so a sync that fails part-way is
picked up again by the next one. While a group is written, the next READ_AHEAD groups are read in
background threads (MLflow calls only, no database): on a full sync the MLflow server is the slow
side, and this keeps it busy.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.entities.model_registry import ModelVersion as MlflowVersion
from mlflow.entities.model_registry import RegisteredModel

from catalog.models import Model, ModelVersion, Project, Source, WorkloadType
from catalog.services import mlflow_reads
from catalog.services.entities import VersionFromMlflow, entity_save, model_versions_sync
from catalog.services.lineage import (
    MODEL_TAG_FRAMEWORK,
    MODEL_TAG_PROJECT,
    MODEL_TAG_RISK_TIER,
    MODEL_TAG_TASK,
    MODEL_TAG_TEAM,
    MODEL_TAG_WORKLOAD,
)
from catalog.services.mlflow_reads import (
    PAGE_SIZE,
    MlflowReader,
    mlflow_probe,
    read_ahead,
    run_lineage,
)
from portal.models import RiskTier, Team
from portal.services.audit import PendingEvent, audit_record_many, snapshot
from portal.services.jobs import JobContext
from portal.services.teams import team_create

logger = logging.getLogger(__name__)

MODEL_CHUNK = 100  # models per group: one search_model_versions call, one transaction
READ_AHEAD = 2  # groups read in background threads while one is written (requests in flight)
UNASSIGNED_SLUG, UNASSIGNED_NAME = "unassigned", "Unassigned"
RISK_TIERS = {label: value for value, label in RiskTier.choices}
PENDING = "PENDING_REGISTRATION"
COUNTED = ("models_changed", "models_created", "models_orphaned", "versions_written", "runs_read", "problems")


@dataclass
class _Pending:
    """A registered model to write: with its versions (read again from MLflow), or its own fields only."""

    rm: RegisteredModel
    versions: list[MlflowVersion] | None


@dataclass(kw_only=True)
class _Sync(MlflowReader):
    ctx: JobContext | None
    full: bool
    models: dict[str, Model] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def log(self, message: str, level: str = "info") -> None:
        if self.ctx is not None:
            self.ctx.log(message, level=level)
        else:
            logger.log(logging.WARNING if level == "warning" else logging.INFO, "%s", message)

    def step(self, name: str) -> AbstractContextManager[Any]:
        return self.ctx.step(name) if self.ctx is not None else nullcontext()

    def check_cancelled(self) -> None:
        if self.ctx is not None:
            self.ctx.check_cancelled()


def mlflow_sync(*, ctx: JobContext | None, tracking_uri: str, full: bool = False) -> dict:
    """Upsert MLflow's registered models, versions, aliases and lineage into the catalog."""
    started = time.monotonic()
    sync = _Sync(client=MlflowClient(tracking_uri=tracking_uri), uri=tracking_uri, ctx=ctx, full=full)
    with sync.step("Connect to MLflow"):
        mlflow_probe(tracking_uri)
        experiments = sync.pages(sync.client.search_experiments, view_type=ViewType.ALL, max_results=PAGE_SIZE)
        sync.experiment_ids = [e.experiment_id for e in experiments]
        kind = "Full" if full else "Incremental"
        sync.log(f"Connected to {tracking_uri}: {len(sync.experiment_ids)} experiments. {kind} sync.")
    with sync.step("Registered models"):
        with ThreadPoolExecutor(max_workers=1) as pool:
            # MLflow's listing is the slow part of a sync with nothing to write: read the catalog meanwhile.
            listing = pool.submit(lambda: list(sync.pages(sync.client.search_registered_models, max_results=PAGE_SIZE)))
            sync.models = {m.name: m for m in Model.objects.select_related("team", "project")}
            sync.projects = {p.name: p for p in Project.objects.all()}
            sync.teams = {t.slug: t for t in Team.objects.all()}
            stored_aliases, unsettled = _stored_versions()
            registered = listing.result()
        changed: list[RegisteredModel] = []
        fields_only: list[_Pending] = []
        for rm in registered:
            model = sync.models.get(rm.name)
            aliases = {alias: int(version) for alias, version in (rm.aliases or {}).items()}
            if (
                full
                or model is None
                or model.mlflow_updated_ms != rm.last_updated_timestamp
                or stored_aliases.get(model.pk, {}) != aliases
                or model.pk in unsettled
            ):
                changed.append(rm)
            else:
                fields_only.append(_Pending(rm, versions=None))
        for start in range(0, len(fields_only), MODEL_CHUNK):
            _write(sync, fields_only[start : start + MODEL_CHUNK], runs={})
        _mark_orphans(sync, {rm.name for rm in registered})
        sync.log(f"{len(registered)} registered models; {len(changed)} to read again.")
    with sync.step("Versions and runs"):
        chunks = [changed[start : start + MODEL_CHUNK] for start in range(0, len(changed), MODEL_CHUNK)]
        names = [[rm.name for rm in chunk] for chunk in chunks]
        with closing(read_ahead(sync.versions_and_runs, names, READ_AHEAD)) as reads:
            for chunk, (_, (versions, runs)) in zip(chunks, reads, strict=True):
                sync.check_cancelled()
                group = [_Pending(rm, versions[rm.name]) for rm in chunk]
                run_ids = _run_ids(group)
                sync.counts["runs_read"] += len(runs)
                if run_ids:
                    batches = math.ceil(len(run_ids) / mlflow_reads.RUN_CHUNK)
                    sync.log(f"Read {len(runs)} of {len(run_ids)} runs in {batches} batches.")
                _write(sync, group, runs)
    with sync.step("Summary"):
        summary = {"models_seen": len(registered), **{key: sync.counts[key] for key in COUNTED}}
        summary["seconds"] = round(time.monotonic() - started, 3)
        sync.log(
            "{models_seen} models seen, {models_changed} changed ({models_created} new, {models_orphaned} orphaned), "
            "{versions_written} versions written, {runs_read} runs read, {problems} problems, {seconds} s.".format(
                **summary
            )
        )
    return summary


def _stored_versions() -> tuple[dict[int, dict[str, int]], set[int]]:
    """Per catalog model id, alias → version as last synced; and the models with a version still pending.

    A pending version turns READY without bumping the registered model's timestamp.
    """
    aliases: dict[int, dict[str, int]] = {}
    for model_id, version, names in ModelVersion.objects.exclude(aliases=[]).values_list(
        "model_id", "version", "aliases"
    ):
        for alias in names or []:
            aliases.setdefault(model_id, {})[alias] = version
    pending = ModelVersion.objects.filter(status=PENDING).values_list("model_id", flat=True)
    return aliases, set(pending)


def _run_ids(group: list[_Pending]) -> set[str]:
    return {v.run_id for p in group for v in p.versions or [] if v.run_id}


def _model_fields(sync: _Sync, rm: RegisteredModel, model: Model | None) -> dict[str, Any]:
    """Catalog fields from the registered model. Tags MLflow lacks leave the catalog's values alone."""
    tags = rm.tags or {}
    fields: dict[str, Any] = {}
    slug = tags.get(MODEL_TAG_TEAM, "").strip()
    team = sync.teams.get(slug)
    if team is not None:
        fields["team"] = team
    elif model is None:
        fields["team"] = _unassigned(sync)
    if team is None and (model is None or model.mlflow_updated_ms != rm.last_updated_timestamp or sync.full):
        reason = f"names unknown team {slug!r}" if slug else f"has no {MODEL_TAG_TEAM} tag"
        owner = fields["team"].slug if "team" in fields else model.team.slug  # type: ignore[union-attr]
        sync.log(f"{rm.name}: {reason}; owner team is {owner}.", "warning")
    if rm.description:
        fields["description"] = rm.description
    for tag, name in ((MODEL_TAG_TASK, "task"), (MODEL_TAG_FRAMEWORK, "framework")):
        if tags.get(tag, "").strip():
            fields[name] = tags[tag].strip()[:50]
    risk = tags.get(MODEL_TAG_RISK_TIER, "").strip().lower()
    if risk in RISK_TIERS:
        fields["risk_tier"] = RISK_TIERS[risk]
    elif risk:
        sync.log(f"{rm.name}: {MODEL_TAG_RISK_TIER} {risk!r} is not low, medium or high; ignored.", "warning")
    workload = tags.get(MODEL_TAG_WORKLOAD, "").strip().lower()
    if workload in WorkloadType.values:
        fields["workload_type"] = workload
    elif workload:
        sync.log(
            f"{rm.name}: {MODEL_TAG_WORKLOAD} {workload!r} is not one of {', '.join(WorkloadType.values)}.", "warning"
        )
    project = tags.get(MODEL_TAG_PROJECT, "").strip()
    if project:
        fields["project"] = project  # resolved to a Project when written
    if model is None or model.source == Source.MLFLOW:
        fields["orphaned"] = False
    return fields


def _differs(model: Model, fields: dict[str, Any]) -> bool:
    for name, value in fields.items():
        if name == "team":
            if model.team_id != value.pk:
                return True
        elif name == "project":
            if model.project is None or model.project.name != value:
                return True
        elif getattr(model, name) != value:
            return True
    return False


@dataclass
class _ModelWrite:
    model: Model  # with the new values, not saved yet
    before: dict[str, Any] | None  # None: a new model
    fields: tuple[str, ...]  # what the sync sets: only these are updated, so a concurrent edit of others is kept


def _write(sync: _Sync, group: list[_Pending], runs: dict[str, Run]) -> None:
    """Write a group of models (and the versions of those read again) in one transaction; nothing unchanged."""
    from catalog.services.search_index import search_index_refresh

    with transaction.atomic():
        writes: dict[str, _ModelWrite] = {}
        stored: list[_Pending] = []  # the models that exist once the group is written
        for item in group:
            try:
                write = _model_write(sync, item)
            except ValidationError as exc:  # one model the catalog cannot hold must not stop the sync
                sync.log(f"{item.rm.name}: not stored: {'; '.join(exc.messages)}", "warning")
                sync.counts["problems"] += 1
                continue
            if write is not None:
                writes[item.rm.name] = write
            stored.append(item)
        _save_models(list(writes.values()))
        for name, write in writes.items():
            sync.models[name] = write.model
        versions = _save_versions(sync, [item for item in stored if item.versions is not None], runs)
        # The versions' writes refreshed their models' search entries; the other written models need it.
        refreshed = {sync.models[name].pk for name, count in versions.items() if count}
        search_index_refresh("model", {w.model.pk for w in writes.values()} - refreshed)
    for item in stored:
        written = versions.get(item.rm.name, 0)
        write = writes.get(item.rm.name)
        sync.counts["models_created"] += int(write is not None and write.before is None)
        sync.counts["models_changed"] += int(write is not None or written > 0)
        sync.counts["versions_written"] += written


def _model_write(sync: _Sync, item: _Pending) -> _ModelWrite | None:
    """The model with its new values, validated; None if nothing changed. Raises ValidationError."""
    rm = item.rm
    model = sync.models.get(rm.name)
    fields = _model_fields(sync, rm, model)
    if item.versions is not None:
        numbers = [int(v.version) for v in item.versions]
        fields.update(
            mlflow_updated_ms=rm.last_updated_timestamp,
            version_count=len(numbers),
            latest_version=max(numbers) if numbers else None,
        )
    if model is not None and not _differs(model, fields):
        return None
    if model is None:
        new, before = Model(name=rm.name, source=Source.MLFLOW), None
    else:
        new, before = _copy(model), snapshot(model)
    names = tuple(sorted(fields))
    project = fields.pop("project", None)
    for key, value in fields.items():
        setattr(new, key, value)
    # Team and project are rows just read or created, and names are unique by construction (one map
    # by name, and the database's unique index behind it): skip the query per model those checks cost.
    new.full_clean(exclude=["team", "project"], validate_unique=False)
    if project is not None:
        new.project = _project(sync, project, new.team)
    return _ModelWrite(new, before, names)


def _copy(model: Model) -> Model:
    """A detached copy to change, so a model that fails validation leaves the cached one as it was."""
    copy = Model(**{f.attname: getattr(model, f.attname) for f in Model._meta.concrete_fields})
    copy._state.adding, copy._state.db = False, model._state.db
    copy.team, copy.project = model.team, model.project  # read already (select_related), or set by the sync
    return copy


def _save_models(writes: list[_ModelWrite]) -> None:
    """Insert and update in bulk, with an audit event each (``model.create`` / ``model.update``)."""
    if not writes:
        return
    Model.objects.bulk_create([w.model for w in writes if w.before is None], batch_size=500)
    now = timezone.now()
    updated: dict[tuple[str, ...], list[Model]] = {}  # by the fields set (few different sets)
    for w in writes:
        if w.before is not None:
            w.model.updated_at = now
            updated.setdefault(w.fields, []).append(w.model)
    for fields, models in updated.items():
        Model.objects.bulk_update(models, [*fields, "updated_at"], batch_size=500)
    audit_record_many(
        [
            PendingEvent(
                action="model.create" if w.before is None else "model.update",
                object_type=Model._meta.label_lower,
                object_id=str(w.model.pk),
                before=w.before,
                after=snapshot(w.model),
            )
            for w in writes
        ]
    )


def _save_versions(sync: _Sync, items: list[_Pending], runs: dict[str, Run]) -> dict[str, int]:
    """Upsert the versions of these models in one batch and log what happened; versions written per model."""
    batch: list[VersionFromMlflow] = []
    for item in items:
        model = sync.models[item.rm.name]
        by_version: dict[int, list[str]] = {}
        for alias, number in (item.rm.aliases or {}).items():
            by_version.setdefault(int(number), []).append(alias)
        for v in sorted(item.versions or [], key=lambda v: int(v.version)):
            number = int(v.version)
            batch.append(
                VersionFromMlflow(
                    model=model,
                    version=number,
                    run_id=v.run_id or "",
                    status=str(v.status or ""),
                    aliases=sorted(set(by_version.get(number, [])) | set(v.aliases or [])),
                    description=v.description or "",
                    source_uri=v.source or "",
                    lineage=run_lineage(v.run_id or "", runs),
                    created_ms=v.creation_timestamp,
                    updated_ms=v.last_updated_timestamp,
                )
            )
    results = iter(model_versions_sync(batch))
    stored: dict[int, set[int]] = {}
    for model_id, number in ModelVersion.objects.filter(
        model_id__in=[sync.models[item.rm.name].pk for item in items]
    ).values_list("model_id", "version"):
        stored.setdefault(model_id, set()).add(number)
    written: dict[str, int] = {}
    for item in items:
        model = sync.models[item.rm.name]
        count = 0
        for v in sorted(item.versions or [], key=lambda v: int(v.version)):
            synced = next(results)
            count += int(synced.changed)
            for problem in synced.problems:
                sync.log(f"{model.name} v{v.version}: {problem}", "warning")
            sync.counts["problems"] += len(synced.problems)
        gone = stored.get(model.pk, set()) - {int(v.version) for v in item.versions or []}
        if gone:
            sync.log(f"{model.name}: versions {sorted(gone)} are no longer in MLflow (kept in the catalog).", "warning")
        sync.log(f"{model.name}: {len(item.versions or [])} versions, {count} written.")
        written[item.rm.name] = count
    return written


def _project(sync: _Sync, name: str, team: Team) -> Project:
    project = sync.projects.get(name)
    if project is None:
        project, _ = entity_save(actor=None, kind="project", name=name, team=team, source=Source.MLFLOW)
        sync.projects[name] = project
    return project


def _unassigned(sync: _Sync) -> Team:
    team = sync.teams.get(UNASSIGNED_SLUG)
    if team is None:
        team = Team.objects.filter(slug=UNASSIGNED_SLUG).first() or team_create(
            actor=None,
            slug=UNASSIGNED_SLUG,
            name=UNASSIGNED_NAME,
            description="Models synced from MLflow without a known team.",
        )
        sync.teams[UNASSIGNED_SLUG] = team
    return team


def _mark_orphans(sync: _Sync, seen: set[str]) -> None:
    """Models that came from MLflow and are gone from it: orphaned, never deleted."""
    for name, model in list(sync.models.items()):
        if name in seen or model.source != Source.MLFLOW or model.orphaned:
            continue
        sync.models[name], _ = entity_save(actor=None, kind="model", name=name, orphaned=True)
        sync.counts["models_orphaned"] += 1
        sync.counts["models_changed"] += 1
        sync.log(f"{name} is no longer in MLflow: marked orphaned.", "warning")
