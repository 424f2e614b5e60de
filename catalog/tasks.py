"""Thin Celery tasks of the catalog."""

from __future__ import annotations

from celery import shared_task

from portal.models import Job, JobStatus
from portal.services.jobs import job_enqueue


@shared_task(name="catalog.tasks.schedule_mlflow_sync")
def schedule_mlflow_sync() -> int | None:
    """The periodic incremental sync; skipped while one is queued or running."""
    if Job.objects.filter(kind="catalog.sync_mlflow", status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists():
        return None
    return job_enqueue(kind="catalog.sync_mlflow", title="Scheduled sync from MLflow", params={"full": False}).pk


@shared_task(name="catalog.tasks.refresh_locations")
def refresh_locations() -> list[int]:
    """The periodic refresh of every descriptor location (at most one pending job each)."""
    from catalog.services.locations import refresh_all_locations

    return refresh_all_locations()
