"""Read MLflow's model registry into the catalog: models, versions, aliases and run lineage.

Incremental by default. A registered model is re-read (versions and runs) only if it is new,
its ``last_updated_timestamp`` moved, its aliases changed or one of its versions was still
pending registration. MLflow bumps the timestamp for a
new or deleted version and for a description edit, but not for aliases, registered-model tags,
version tags or run tags. Model-level fields come from the registered model's tags, which are
in the listing anyway, so they are compared in memory on every sync. Pass ``full=True`` to
re-read everything, for example after run tags were added later.

Runs are fetched in batches (``attributes.run_id IN (...)``, RUN_CHUNK ids per call), never
one call per version. Each model and its versions are written in one transaction, with its
``mlflow_updated_ms`` last, so a sync that fails part-way is picked up again by the next one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.entities.model_registry import ModelVersion as MlflowVersion
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException, RestException

from catalog.models import Model, ModelVersion, Project, Source, WorkloadType
from catalog.services.entities import entity_save, model_version_sync
from catalog.services.lineage import (
    MODEL_TAG_FRAMEWORK,
    MODEL_TAG_PROJECT,
    MODEL_TAG_RISK_TIER,
    MODEL_TAG_TASK,
    MODEL_TAG_TEAM,
    MODEL_TAG_WORKLOAD,
    DatasetInput,
    RunLineage,
    lineage_from_run,
)
from portal.models import RiskTier, Team
from portal.services.jobs import JobContext
from portal.services.teams import team_create

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000  # registered models, versions and experiments per page
RUN_CHUNK = 100  # run ids per search_runs call
FLUSH_RUNS = 1000  # pending run ids before the pending models are written (bounds memory)
CONNECT_TIMEOUT_SECONDS = 5.0
UNASSIGNED_SLUG, UNASSIGNED_NAME = "unassigned", "Unassigned"
RISK_TIERS = {label: value for value, label in RiskTier.choices}
PENDING = "PENDING_REGISTRATION"
COUNTED = ("models_changed", "models_created", "models_orphaned", "versions_written", "runs_read", "problems")


class MlflowUnavailable(RuntimeError):
    """MLflow did not answer, or answered with an error; the catalog was left as it was."""


@dataclass
class _Pending:
    """A changed registered model whose versions were read and whose runs are still to fetch."""

    rm: RegisteredModel
    versions: list[MlflowVersion]


@dataclass
class _Sync:
    client: MlflowClient
    uri: str
    ctx: JobContext | None
    full: bool
    experiment_ids: list[str] = field(default_factory=list)
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

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the MLflow client; turn its failures into one clear error."""
        try:
            return fn(*args, **kwargs)
        except RestException as exc:
            raise MlflowUnavailable(f"MLflow at {self.uri} returned an error: {exc}") from exc
        except (MlflowException, requests.RequestException, OSError) as exc:
            raise MlflowUnavailable(f"MLflow at {self.uri} is not answering: {exc}") from exc

    def pages(self, fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = self.call(fn, page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return


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
        registered = list(sync.pages(sync.client.search_registered_models, max_results=PAGE_SIZE))
        sync.models = {m.name: m for m in Model.objects.select_related("team", "project")}
        sync.projects = {p.name: p for p in Project.objects.all()}
        sync.teams = {t.slug: t for t in Team.objects.all()}
        stored_aliases, unsettled = _stored_versions()
        changed: list[RegisteredModel] = []
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
                _save_model(sync, rm, model_only=True)
        _mark_orphans(sync, {rm.name for rm in registered})
        sync.log(f"{len(registered)} registered models; {len(changed)} to read again.")
    with sync.step("Versions and runs"):
        pending: list[_Pending] = []
        for rm in changed:
            sync.check_cancelled()
            versions = list(
                sync.pages(sync.client.search_model_versions, filter_string=name_filter(rm.name), max_results=PAGE_SIZE)
            )
            pending.append(_Pending(rm, [v for v in versions if v.name == rm.name]))
            if len(_run_ids(pending)) >= FLUSH_RUNS:
                _write(sync, pending)
                pending = []
        _write(sync, pending)
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


def mlflow_probe(uri: str) -> None:
    """Fail fast: the MLflow client retries a refused connection for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise MlflowUnavailable(f"MLflow at {uri} is not answering: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise MlflowUnavailable(f"MLflow at {uri} is not answering: /health returned HTTP {response.status_code}")


def name_filter(name: str) -> str:
    """An exact-name filter. MLflow's parser has no escapes, so pick the quote the name lacks."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    prefix = name[: min(name.index("'"), name.index('"'))]
    return f"name LIKE '{prefix}%'"  # callers keep only the exact name


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


def _run_ids(pending: list[_Pending]) -> set[str]:
    return {v.run_id for p in pending for v in p.versions if v.run_id}


def _write(sync: _Sync, pending: list[_Pending]) -> None:
    """Fetch the pending models' runs in batches, then write each model with its versions."""
    if not pending:
        return
    runs = _fetch_runs(sync, sorted(_run_ids(pending)))
    for item in pending:
        sync.check_cancelled()
        _save_model(sync, item.rm, versions=item.versions, runs=runs)


def _fetch_runs(sync: _Sync, run_ids: list[str]) -> dict[str, Run]:
    runs: dict[str, Run] = {}
    for start in range(0, len(run_ids), RUN_CHUNK):
        chunk = run_ids[start : start + RUN_CHUNK]
        quoted = ", ".join(f"'{run_id}'" for run_id in chunk)
        for run in sync.pages(
            sync.client.search_runs,
            experiment_ids=sync.experiment_ids,
            filter_string=f"attributes.run_id IN ({quoted})",
            run_view_type=ViewType.ALL,
            max_results=RUN_CHUNK,
        ):
            runs[run.info.run_id] = run
    sync.counts["runs_read"] += len(runs)
    if run_ids:
        sync.log(f"Read {len(runs)} of {len(run_ids)} runs in {math.ceil(len(run_ids) / RUN_CHUNK)} batches.")
    return runs


def _lineage(run_id: str, runs: dict[str, Run]) -> RunLineage:
    run = runs.get(run_id)
    if run is None:
        lineage = lineage_from_run(tags={}, params={}, metrics={}, datasets=[])
        if run_id:
            lineage.problems.append(f"run {run_id} was not found in MLflow")
        return lineage
    datasets = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        ds = item.dataset
        datasets.append(DatasetInput(name=ds.name, digest=ds.digest, uri=_dataset_uri(ds.source)))
    return lineage_from_run(tags=run.data.tags, params=run.data.params, metrics=run.data.metrics, datasets=datasets)


def _dataset_uri(source: str) -> str:
    """MLflow stores a dataset's source as JSON such as {"uri": "s3://…"}; keep the URI."""
    try:
        parsed = json.loads(source)
    except (TypeError, ValueError):
        return (source or "")[:500]
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if parsed.get(key):
                return str(parsed[key])[:500]
    return (source or "")[:500]


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


def _save_model(
    sync: _Sync,
    rm: RegisteredModel,
    *,
    model_only: bool = False,
    versions: list[MlflowVersion] | None = None,
    runs: dict[str, Run] | None = None,
) -> None:
    """Write one model (and, unless model_only, its versions) in one transaction; write nothing if unchanged."""
    model = sync.models.get(rm.name)
    fields = _model_fields(sync, rm, model)
    if not model_only:
        numbers = [int(v.version) for v in versions or []]
        fields.update(
            mlflow_updated_ms=rm.last_updated_timestamp,
            version_count=len(numbers),
            latest_version=max(numbers) if numbers else None,
        )
    if model_only and model is not None and not _differs(model, fields):
        return
    written, versions_written, created = 0, 0, False
    try:
        with transaction.atomic():
            if model is None or _differs(model, fields):
                if "project" in fields:
                    fields["project"] = _project(sync, fields["project"], fields.get("team") or model.team)  # type: ignore[union-attr]
                extra = {"source": Source.MLFLOW} if model is None else {}
                model, created = entity_save(actor=None, kind="model", name=rm.name, **fields, **extra)
                written += 1
            if not model_only:
                versions_written = _save_versions(sync, model, rm, versions or [], runs or {})
                written += versions_written
    except ValidationError as exc:  # one model the catalog cannot hold must not stop the sync
        sync.log(f"{rm.name}: not stored: {'; '.join(exc.messages)}", "warning")
        sync.counts["problems"] += 1
        sync.projects = {p.name: p for p in Project.objects.all()}  # drop any rolled back with it
        return
    sync.models[rm.name] = model
    sync.counts["models_created"] += int(created)
    sync.counts["models_changed"] += int(written > 0)
    sync.counts["versions_written"] += versions_written


def _save_versions(
    sync: _Sync, model: Model, rm: RegisteredModel, versions: list[MlflowVersion], runs: dict[str, Run]
) -> int:
    by_version: dict[int, list[str]] = {}
    for alias, number in (rm.aliases or {}).items():
        by_version.setdefault(int(number), []).append(alias)
    written = 0
    for v in sorted(versions, key=lambda v: int(v.version)):
        number = int(v.version)
        lineage = _lineage(v.run_id or "", runs)
        _, changed, problems = model_version_sync(
            model=model,
            version=number,
            run_id=v.run_id or "",
            status=str(v.status or ""),
            aliases=sorted(set(by_version.get(number, [])) | set(v.aliases or [])),
            description=v.description or "",
            source_uri=v.source or "",
            lineage=lineage,
            created_ms=v.creation_timestamp,
            updated_ms=v.last_updated_timestamp,
        )
        written += int(changed)
        for problem in problems:
            sync.log(f"{model.name} v{number}: {problem}", "warning")
        sync.counts["problems"] += len(problems)
    gone = set(model.versions.values_list("version", flat=True)) - {int(v.version) for v in versions}
    if gone:
        sync.log(f"{model.name}: versions {sorted(gone)} are no longer in MLflow (kept in the catalog).", "warning")
    sync.log(f"{model.name}: {len(versions)} versions, {written} written.")
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
