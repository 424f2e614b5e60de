"""The one runner for every long task: a Job row, steps, log lines, heartbeat, reaper.

A job kind is a function registered with :func:`job_handler`; it receives a
:class:`JobContext` and the job's params. Celery only carries the job id.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from portal.context import audit_context
from portal.models import Job, JobLogLine, JobStatus
from portal.permissions import is_platform_admin, require
from portal.services.audit import audit_record

logger = logging.getLogger(__name__)

_HANDLERS: dict[str, Callable[..., Any]] = {}


class JobCancelled(Exception):
    pass


class JobRetry(Exception):
    """A transient failure (a service down): the job is queued again while it has attempts left."""

    def __init__(self, message: str, *, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


def job_handler(kind: str) -> Callable:
    def register(fn: Callable) -> Callable:
        _HANDLERS[kind] = fn
        return fn

    return register


def registered_kinds() -> list[str]:
    return sorted(_HANDLERS)


def job_enqueue(
    *,
    kind: str,
    title: str,
    user=None,
    team=None,
    target=None,
    params: dict | None = None,
    max_attempts: int = 1,
) -> Job:
    if kind not in _HANDLERS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(
        kind=kind,
        title=title,
        created_by=user if user and user.is_authenticated else None,
        team=team,
        params=params or {},
        max_attempts=max_attempts,
    )
    if target is not None:
        job.target_type = ContentType.objects.get_for_model(target)
        job.target_id = str(target.pk)
    with transaction.atomic():
        job.save()
        audit_record(action="job.enqueue", obj=job, after={"kind": kind, "title": title, "params": job.params})
        transaction.on_commit(lambda: _dispatch(job.pk))
    return job


def _dispatch(job_id: int, countdown: float = 0) -> None:
    from portal.tasks import run_job

    try:
        run_job.apply_async((job_id,), countdown=countdown or None)
    except Exception:  # broker down: the job stays queued and the reaper re-sends it
        logger.exception("could not send job %s to the broker", job_id)


def job_cancel(*, actor, job: Job) -> Job:
    require(
        is_platform_admin(actor) or job.created_by_id == actor.pk,
        "Only the person who started a job, or a platform admin, can cancel it.",
    )
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="Cancelled before it started."
        ):
            pass
        else:
            Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
        audit_record(action="job.cancel", obj=job)
    job.refresh_from_db()
    return job


class JobContext:
    """What a handler uses to report progress."""

    def __init__(self, job: Job):
        self.job = job

    def log(self, message: str, *, level: str = "info") -> None:
        step = next((s["name"] for s in reversed(self.job.steps) if s["status"] == "running"), "")
        JobLogLine.objects.create(job=self.job, level=level, step=step, message=message)

    def check_cancelled(self) -> None:
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.check_cancelled()
        entry = {"name": name, "status": "running", "started_at": timezone.now().isoformat(), "finished_at": None}
        self.job.steps.append(entry)
        self._save_steps()
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            entry["status"] = "cancelled" if isinstance(exc, JobCancelled) else "failed"
            raise
        else:
            entry["status"] = "succeeded"
        finally:
            entry["finished_at"] = timezone.now().isoformat()
            entry["duration_seconds"] = round(time.monotonic() - started, 3)
            self._save_steps()

    def _save_steps(self) -> None:
        Job.objects.filter(pk=self.job.pk).update(steps=self.job.steps)


class _Heartbeat(threading.Thread):
    def __init__(self, job_id: int, every: float):
        super().__init__(daemon=True, name=f"job-{job_id}-heartbeat")
        self.job_id, self.every = job_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
        finally:
            connection.close()


def worker_name() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def job_run(*, job_id: int, worker: str | None = None) -> str | None:
    """Claim a queued job and run it; returns the final status, or None if not claimed."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        attempts=F("attempts") + 1,
        worker=worker or worker_name(),
    )
    if not claimed:
        return None
    job = Job.objects.select_related("created_by").get(pk=job_id)
    ctx = JobContext(job)
    heartbeat = _Heartbeat(job.pk, settings.JOB_HEARTBEAT_SECONDS)
    heartbeat.start()
    status, result, error = JobStatus.SUCCEEDED, None, ""
    with audit_context(user=job.created_by, request_id=f"job-{job.pk}"):
        try:
            handler = _HANDLERS[job.kind]
            result = handler(ctx, **job.params)
        except JobCancelled:
            status, error = JobStatus.CANCELLED, "Cancelled while running."
            ctx.log("Cancelled.", level="warning")
        except JobRetry as exc:
            status, error = JobStatus.FAILED, str(exc)
            if job.attempts < job.max_attempts:
                delay = settings.JOB_RETRY_SECONDS * 2 ** (job.attempts - 1) if exc.delay is None else exc.delay
                ctx.log(
                    f"{exc} Attempt {job.attempts} of {job.max_attempts}; retrying in {delay:g} s.", level="warning"
                )
                heartbeat.stopped.set()
                heartbeat.join(timeout=5)
                _requeue(job, error=str(exc), delay=delay)
                return JobStatus.QUEUED
            ctx.log(f"{exc} No attempts left ({job.attempts} of {job.max_attempts}).", level="error")
        except Exception as exc:
            status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
            ctx.log(error, level="error")
            ctx.log(traceback.format_exc(limit=8), level="debug")
        finally:
            heartbeat.stopped.set()
            heartbeat.join(timeout=5)
        _finish(job, status=status, result=result, error=error)
    return status


def _requeue(job: Job, *, error: str, delay: float) -> None:
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(status=JobStatus.QUEUED, error=error):
            audit_record(action="job.retry", obj=job, after={"error": error, "delay_seconds": delay})
            transaction.on_commit(lambda: _dispatch(job.pk, countdown=delay))


def _finish(job: Job, *, status: str, result: Any, error: str) -> None:
    with transaction.atomic():
        # Conditional: a job the reaper already gave up on stays as the reaper left it.
        done = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=status, result=result, error=error, finished_at=timezone.now()
        )
        if done:
            audit_record(action=f"job.{status}", obj=job, after={"status": status, "error": error})


def job_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Fail (or retry) running jobs whose worker stopped heart-beating; re-send lost queued jobs."""
    stale_after = stale_after or timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    cutoff = timezone.now() - stale_after
    reaped: list[int] = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        with transaction.atomic():
            reason = (
                f"The worker ({job.worker or 'unknown'}) stopped responding: no heartbeat since "
                f"{job.heartbeat_at.isoformat()}."
            )
            retry = job.attempts < job.max_attempts
            fields = (
                {"status": JobStatus.QUEUED, "error": reason + " Retrying."}
                if retry
                else {"status": JobStatus.FAILED, "error": reason, "finished_at": timezone.now()}
            )
            if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(**fields):
                continue
            JobLogLine.objects.create(job=job, level="error", message=fields["error"])
            audit_record(action="job.reap", obj=job, after={"status": fields["status"], "reason": reason})
            if retry:
                transaction.on_commit(lambda pk=job.pk: _dispatch(pk))
        reaped.append(job.pk)
    # A message lost by the broker (or never sent: broker down at enqueue) would leave a
    # job queued for ever; send it again. Claiming is conditional, so a duplicate is harmless.
    lost_cutoff = timezone.now() - stale_after * 5
    for job_id in Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=lost_cutoff).values_list("pk", flat=True):
        _dispatch(job_id)
    return reaped


def job_log_since(job: Job, after_id: int = 0, limit: int = 500) -> list[JobLogLine]:
    return list(job.log_lines.filter(id__gt=after_id)[:limit])
