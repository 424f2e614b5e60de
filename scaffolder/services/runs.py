"""Runs: create a project from a template, as a job whose steps can be retried from the one that failed.

render → create the git repository → initial commit → push → register in the catalog → create the MLflow
experiment → done. ``Run.progress`` records each step's result, so a retry skips what is done. Nothing is
half-made: the name is checked before anything is created (409), a failed push removes the repository it
created, and the catalog registration is one transaction that only happens once the repository holds the
commit. A failed run keeps its name until it is retried or discarded (which removes what it made).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Project
from catalog.permissions import can_write
from catalog.services.entities import entity_delete
from catalog.services.git_source import LocationRefused, _git_env, _last_lines
from portal.models import Job, JobStatus, Team
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record
from portal.services.jobs import JobCancelled, JobContext, job_enqueue
from portal.services.teams import Conflict
from scaffolder import parameters
from scaffolder.models import STEPS, Run, RunStatus, Template
from scaffolder.services import registration
from scaffolder.services.git_provider import GitServerError, get_provider
from scaffolder.services.rendering import FileView, RenderFailed, file_views, render, require_isolation
from scaffolder.services.templates import template_checkout

logger = logging.getLogger(__name__)
KIND = "scaffolder.run"
BRANCH = "main"
COMMITTER = ("ML Platform Portal", "portal@localhost")


class RunFailed(Exception):
    """A step failed; the message says what happened and what was cleaned up."""


# --- Starting, retrying, discarding --------------------------------------------------------------------


def name_taken(name: str, team: Team) -> str | None:
    project = Project.objects.filter(name=name).select_related("team").first()
    if project is not None:
        return f"A project named {name} already exists in the catalog (team {project.team.slug}). Choose another name."
    run = Run.objects.live().filter(name=name).first()
    if run is not None:
        return f"A project named {name} is already being created (run #{run.pk}, {run.status})."
    if get_provider().exists(team=team.slug, name=name):
        return f"A repository {team.slug}/{name} already exists on the git server. Choose another name."
    return None


def run_create(*, actor, template: Template, team: Team, parameters_given: dict[str, Any]) -> tuple[Run, bool]:
    """Validate, check the name, record the run and queue its job. Returns (run, created).

    Submitting the same thing twice returns the first run (created=False); a name in use is a Conflict."""
    require(
        can_write(actor, team), f"You can only create projects for teams you belong to; you are not in {team.slug}."
    )
    cleaned = clean_for_team(template, team, parameters_given)
    if cleaned.errors:
        raise ValidationError(cleaned.errors)
    try:
        require_isolation()
    except RenderFailed as exc:
        raise ValidationError(exc.message) from exc
    same = {"template": template, "team": team, "created_by": actor, "parameters": cleaned.values}
    existing = Run.objects.live().filter(name=cleaned.name).first()
    if existing is not None and _is_same(existing, same):
        return existing, False
    taken = name_taken(cleaned.name, team)
    if taken:
        raise Conflict(taken)
    try:
        with transaction.atomic():
            run = Run.objects.create(
                template=template,
                template_commit=template.commit,
                team=team,
                created_by=actor,
                name=cleaned.name,
                parameters=cleaned.values,
                context=cleaned.context,
            )
            audit_record(
                action="scaffolder_run.create",
                obj=run,
                after={
                    "name": run.name,
                    "team": team.slug,
                    "template": template.pk,
                    "commit": run.template_commit,
                    "parameters": run.parameters,
                },
            )
            run.job = _enqueue(run, actor, f"Create {run.name} from {template.title}")
            run.save(update_fields=["job"])
    except IntegrityError as exc:  # the same name submitted concurrently
        existing = Run.objects.live().filter(name=cleaned.name).first()
        if existing is not None and _is_same(existing, same):
            return existing, False
        raise Conflict(f"A project named {cleaned.name} is already being created.") from exc
    return run, True


def portal_values(team: Team) -> dict[str, str]:
    return {
        "mlplatform_team": team.slug,
        "mlplatform_url": settings.SITE_URL,
        "mlflow_tracking_uri": settings.MLFLOW_TRACKING_URI,
    }


def clean_for_team(template: Template, team: Team | None, given: dict[str, Any] | None) -> parameters.Cleaned:
    """The user's values checked, with the values the portal fills in (team, URLs) for templates that ask."""
    config = template.variables
    portal = portal_values(team) if team is not None else {}
    cleaned = parameters.clean_parameters(config, given or {}, template.name_variable, portal=portal)
    declared = {v.name for v in parameters.variables(config) if v.kind == "portal"}
    if team is not None and "mlplatform_repo_url" in declared and cleaned.name and not cleaned.errors:
        url = get_provider().clone_url(team=team.slug, name=cleaned.name)
        cleaned.values["mlplatform_repo_url"] = url
        cleaned.context["mlplatform_repo_url"] = url
    return cleaned


def _is_same(run: Run, same: dict[str, Any]) -> bool:
    return (
        run.template_id == same["template"].pk
        and run.team_id == same["team"].pk
        and run.created_by_id == getattr(same["created_by"], "pk", None)
        and run.parameters == same["parameters"]
    )


def _enqueue(run: Run, actor, title: str) -> Job:
    return job_enqueue(kind=KIND, title=title[:200], user=actor, team=run.team, target=run, params={"run_id": run.pk})


def can_act(actor, run: Run) -> bool:
    return is_platform_admin(actor) or run.created_by_id == actor.pk or can_write(actor, run.team)


def _require_run_owner(actor, run: Run, what: str) -> None:
    require(can_act(actor, run), f"Only members of team {run.team.slug} {what} its runs.")


def run_retry(*, actor, run: Run) -> Run:
    """Queue the run again; it starts at the step that failed."""
    _require_run_owner(actor, run, "retry")
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run.pk, status=RunStatus.FAILED).update(status=RunStatus.QUEUED, error="")
        if not claimed:
            raise Conflict(f"Run #{run.pk} is {run.status}; only a failed run can be retried.")
        run.refresh_from_db()
        audit_record(action="scaffolder_run.retry", obj=run, after={"from_step": next_step(run)})
        run.job = _enqueue(run, actor, f"Retry: create {run.name} (from: {dict(STEPS)[next_step(run)]})")
        run.save(update_fields=["job"])
    return run


def run_discard(*, actor, run: Run) -> Run:
    """Give up on a failed run: remove the repository and catalog entry it made; the name is free again."""
    _require_run_owner(actor, run, "discard")
    if run.status != RunStatus.FAILED:
        raise Conflict(f"Run #{run.pk} is {run.status}; only a failed run can be discarded.")
    removed: list[str] = []
    if run.progress.get("repo"):
        get_provider().delete_repo(team=run.team.slug, name=run.name)
        removed.append(f"repository {run.team.slug}/{run.name}")
    with transaction.atomic():
        if run.project_id:
            project = run.project
            entity_delete(actor=None, entity=project)  # it exists only because this run registered it
            removed.append(f"catalog project {run.name}")
        Run.objects.filter(pk=run.pk).update(status=RunStatus.DISCARDED, finished_at=timezone.now(), project=None)
        audit_record(action="scaffolder_run.discard", obj=run, after={"removed": removed})
    _remove_workdir(run)
    run.refresh_from_db()
    return run


def run_reconcile(run: Run) -> Run:
    """A run whose job ended without it (the worker died and the reaper gave up, or it was cancelled before it
    started) is failed, so it can be retried or discarded."""
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING) or run.job is None:
        return run
    job = run.job
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        error = job.error or f"The job ended {job.status}."
        with transaction.atomic():
            if Run.objects.filter(pk=run.pk, status=run.status, job=job).update(
                status=RunStatus.FAILED, error=error, finished_at=timezone.now()
            ):
                audit_record(action="scaffolder_run.fail", obj=run, after={"step": next_step(run), "error": error})
        run.refresh_from_db()
    return run


def next_step(run: Run) -> str:
    return next((key for key, _ in STEPS if key not in (run.progress or {})), "done")


# --- The job ------------------------------------------------------------------------------------------


def _workdir(run: Run) -> Path:
    return Path(settings.SCAFFOLDER_WORK_DIR) / "runs" / str(run.pk)


def _remove_workdir(run: Run) -> None:
    shutil.rmtree(_workdir(run), ignore_errors=True)


def run_execute(ctx: JobContext, *, run_id: int) -> dict[str, Any]:
    run = Run.objects.select_related("template", "team", "created_by").filter(pk=run_id).first()
    if run is None or run.status in (RunStatus.SUCCEEDED, RunStatus.DISCARDED):
        ctx.log(f"Run #{run_id} is {'gone' if run is None else run.status}; nothing to do.", level="warning")
        return {"run": run_id}
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, error="")
    runner = _Steps(ctx, run)
    try:
        for key, title in STEPS:
            with ctx.step(title):
                if key in run.progress:
                    ctx.log("Done in an earlier attempt; skipped.")
                    continue
                result = getattr(runner, key)()
                run.progress[key] = result
                Run.objects.filter(pk=run.pk).update(progress=run.progress)
    except Exception as exc:
        if isinstance(exc, JobCancelled):
            message = "Cancelled while running; retry to go on from this step, or discard."
        else:
            message = exc.message if isinstance(exc, RenderFailed) else (str(exc) or type(exc).__name__)
        with transaction.atomic():
            Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error=message, finished_at=timezone.now())
            audit_record(action="scaffolder_run.fail", obj=run, after={"step": next_step(run), "error": message})
        if not isinstance(exc, RunFailed | RenderFailed | GitServerError | registration.RegistrationFailed):
            raise
        raise RunFailed(message) from exc
    return {"run": run.pk, "project": run.name, "repo_url": run.repo_url, "experiment_id": run.experiment_id}


class _Steps:
    def __init__(self, ctx: JobContext, run: Run):
        self.ctx, self.run = ctx, run
        self.provider = get_provider()
        self.work = _workdir(run)
        self.project_dir = self.work / "project"

    # render ------------------------------------------------------------------------------------------
    def render(self) -> dict[str, Any]:
        run = self.run
        try:
            template_dir = template_checkout(run.template, run.template_commit)
        except LocationRefused as exc:
            raise RunFailed(f"The template cannot be fetched: {exc}") from exc
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.ctx.log(f"Rendering {run.template.title} at {run.template_commit[:12]} in an isolated process…")
        rendered = render(template_dir=template_dir, extra_context=run.parameters, dest=self.project_dir)
        for line in rendered.output.strip().splitlines()[-40:]:
            self.ctx.log(f"hook: {line}")
        for path in rendered.skipped:
            self.ctx.log(f"Ignored {path}: a hook created it; the portal makes the repository.", level="warning")
        produced = rendered.context.get(run.template.name_variable)
        if produced != run.name:
            raise RunFailed(f"The template named the project {produced!r}, not {run.name!r}; nothing was created.")
        descriptor = self.project_dir / registration.DESCRIPTOR
        try:
            registration.descriptors_check(descriptor.read_bytes() if descriptor.is_file() else None, name=run.name)
        except registration.RegistrationFailed as exc:
            raise RunFailed(f"The generated {exc}; nothing was created.") from exc
        if not descriptor.is_file():
            self.ctx.log(f"No {registration.DESCRIPTOR}: the catalog gets a plain project entry.", level="warning")
        Run.objects.filter(pk=run.pk).update(context=rendered.context)
        run.context = rendered.context
        self.ctx.log(f"{len(rendered.files)} files in {rendered.seconds:.1f} s.")
        return {"files": len(rendered.files), "seconds": round(rendered.seconds, 3)}

    # create the repository ---------------------------------------------------------------------------------
    def repo(self) -> dict[str, Any]:
        run = self.run
        self.provider.check()
        url = self.provider.create_repo(
            team=run.team.slug,
            name=run.name,
            run_id=run.pk,
            description=f"{run.name}, created from {run.template.title}",
        )
        Run.objects.filter(pk=run.pk).update(repo_url=url)
        run.repo_url = url
        self.ctx.log(f"Created {url} on the {self.provider.name} git server.")
        return {"url": url}

    # initial commit ------------------------------------------------------------------------------------------
    def commit(self) -> dict[str, Any]:
        if not self.project_dir.is_dir():
            self.ctx.log("The working copy from the earlier attempt is gone: rendering again.")
            self.render()
        sha = self._commit()
        self.ctx.log(f"Committed {sha[:12]}.")
        return {"sha": sha}

    def _commit(self) -> str:
        run, project = self.run, str(self.project_dir)
        shutil.rmtree(self.project_dir / ".git", ignore_errors=True)
        author = run.created_by
        name = (author.get_full_name() or author.username) if author else "ML Platform Portal"
        email = (author.email or f"{author.username}@localhost") if author else COMMITTER[1]
        # Fixed dates: the same render gives the same commit, so a retry cannot fork history.
        when = run.created_at.isoformat()
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": COMMITTER[0],
            "GIT_COMMITTER_EMAIL": COMMITTER[1],
            "GIT_COMMITTER_DATE": when,
        }
        message = (
            f"Create {run.name} from {run.template.title}\n\n"
            f"Scaffolded by the ML Platform Portal (run #{run.pk}) from {run.template.url} "
            f"at {run.template_commit}.\n"
        )
        _git(["init", "--quiet", f"--initial-branch={BRANCH}", "--template=", project])
        _git(["-C", project, "add", "--all"])
        _git(["-C", project, "commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message], env=env)
        return _git(["-C", project, "rev-parse", "HEAD"]).strip()

    # push ------------------------------------------------------------------------------------------------
    def push(self) -> dict[str, Any]:
        run = self.run
        if not (self.project_dir / ".git").is_dir():
            self.ctx.log("The working copy from the earlier attempt is gone: rendering and committing again.")
            self.render()
            self.run.progress["commit"] = {"sha": self._commit()}
        sha = run.progress["commit"]["sha"]
        try:
            self.provider.push(local=self.project_dir, team=run.team.slug, name=run.name, branch=BRANCH, run_id=run.pk)
            if self.provider.head(team=run.team.slug, name=run.name, branch=BRANCH) != sha:
                raise GitServerError("the server does not hold the pushed commit")
        except GitServerError as exc:
            self.provider.delete_repo(team=run.team.slug, name=run.name)
            run.progress.pop("repo", None)
            Run.objects.filter(pk=run.pk).update(progress=run.progress, repo_url="")
            raise RunFailed(f"{exc} The partly created repository was removed; retry when the server answers.") from exc
        self.ctx.log(f"Pushed {sha[:12]} to {BRANCH}.")
        return {"sha": sha, "branch": BRANCH}

    # register in the catalog ------------------------------------------------------------------------------
    def register(self) -> dict[str, Any]:
        run = self.run
        descriptor = self.project_dir / registration.DESCRIPTOR
        if descriptor.is_file():
            content = descriptor.read_bytes()
        else:
            content = self.provider.read_file(team=run.team.slug, name=run.name, path=registration.DESCRIPTOR)
        project, written = registration.register_project(run=run, content=content, actor=run.created_by)
        self.ctx.log(f"Registered {', '.join(written)}: {project.get_absolute_url()}")
        return {"project": project.name, "entities": written}

    # MLflow experiment -----------------------------------------------------------------------------------
    def experiment(self) -> dict[str, Any]:
        run = self.run
        tags = {
            "mlplatform.team": run.team.slug,
            "mlplatform.project": run.name,
            "mlplatform.template": f"{run.template.title}@{run.template_commit[:12]}",
        }
        try:
            experiment_id, created = registration.experiment_ensure(
                tracking_uri=settings.MLFLOW_TRACKING_URI, name=run.name, tags=tags
            )
        except registration.MlflowUnavailable as exc:
            raise RunFailed(f"{exc} The project is registered; retry to create its experiment.") from exc
        Run.objects.filter(pk=run.pk).update(experiment_id=experiment_id)
        run.experiment_id = experiment_id
        self.ctx.log(f"{'Created' if created else 'Reusing'} MLflow experiment {run.name} (id {experiment_id}).")
        return {"experiment_id": experiment_id}

    # done ------------------------------------------------------------------------------------------------
    def done(self) -> dict[str, Any]:
        run = self.run
        with transaction.atomic():
            Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now(), error="")
            audit_record(
                action="scaffolder_run.succeed",
                obj=run,
                after={"project": run.name, "repo_url": run.repo_url, "commit": run.progress["commit"]["sha"]},
            )
        _remove_workdir(run)
        self.ctx.log(f"Next: git clone {run.repo_url} && cd {run.name} && make setup && make train")
        return {}


def _git(args: list[str], *, env: dict[str, str] | None = None) -> str:
    home = str(settings.SCAFFOLDER_WORK_DIR)
    os.makedirs(home, exist_ok=True)
    done = subprocess.run(
        [settings.CATALOG_GIT_BINARY, *args],
        env=_git_env(home) | (env or {}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=float(settings.GIT_TIMEOUT_SECONDS),
    )
    if done.returncode != 0:
        raise RunFailed(f"git {args[0] if args[0] != '-C' else args[2]} failed: {_last_lines(done.stderr)}")
    return done.stdout.decode()


# --- Dry run ----------------------------------------------------------------------------------------


@dataclass
class DryRun:
    name: str
    files: list[FileView]
    context: dict[str, Any]
    seconds: float
    conflict: str | None


def dry_run(*, actor, template: Template, team: Team, parameters_given: dict[str, Any]) -> DryRun:
    """Render in isolation and show the files; nothing is created."""
    require(
        can_write(actor, team), f"You can only preview projects for teams you belong to; you are not in {team.slug}."
    )
    cleaned = clean_for_team(template, team, parameters_given)
    if cleaned.errors:
        raise ValidationError(cleaned.errors)
    try:
        template_dir = template_checkout(template)
    except LocationRefused as exc:
        raise ValidationError(f"The template cannot be fetched: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="dry-run-", dir=_scratch_dir()) as tmp:
        try:
            rendered = render(template_dir=template_dir, extra_context=cleaned.values, dest=Path(tmp) / "project")
        except RenderFailed as exc:
            detail = f" Output: {exc.output.strip()[-600:]}" if exc.output.strip() else ""
            raise ValidationError(f"The template did not render: {exc.message}{detail}") from exc
        files = file_views(rendered.root)
    return DryRun(
        name=cleaned.name,
        files=files,
        context=rendered.context,
        seconds=round(rendered.seconds, 3),
        conflict=name_taken(cleaned.name, team),
    )


def _scratch_dir() -> Path:
    path = Path(settings.SCAFFOLDER_WORK_DIR) / "dry-runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
