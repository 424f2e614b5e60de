"""Thin Celery tasks: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from portal.services import audit as audit_service
from portal.services import jobs as job_service


@shared_task(name="portal.tasks.run_job", acks_late=True)
def run_job(job_id: int) -> str | None:
    return job_service.job_run(job_id=job_id)


@shared_task(name="portal.tasks.reap_jobs")
def reap_jobs() -> list[int]:
    return job_service.job_reap()


@shared_task(name="portal.tasks.audit_checkpoint")
def audit_checkpoint() -> int | None:
    try:
        checkpoint = audit_service.audit_checkpoint_create()
    except audit_service.AuditKeyMissing:
        return None
    return checkpoint.seq if checkpoint else None
