"""A real Celery worker process runs jobs from the broker (filesystem embedded, or Redis on CI)."""

import os
import signal
from datetime import timedelta

import pytest

from portal.models import Job, JobStatus
from portal.services.jobs import job_enqueue, job_reap
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_worker_runs_a_job_end_to_end(celery_worker, demo_users):
    job = job_enqueue(kind="portal.selftest", title="Self-test", user=demo_users["admin"], params={"pause_seconds": 0})
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, (job.error, celery_worker.log_path.read_text()[-3000:])
    assert job.worker and job.heartbeat_at and len(job.steps) == 4
    assert job.log_lines.filter(message__startswith="database: ok").exists()


def test_job_whose_worker_dies_is_failed_by_the_reaper(celery_worker, demo_users):
    job = job_enqueue(kind="portal.selftest", title="Self-test", user=demo_users["admin"], params={"pause_seconds": 30})
    wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.RUNNING, timeout=60)
    wait_until(lambda: Job.objects.get(pk=job.pk).heartbeat_at > Job.objects.get(pk=job.pk).started_at, timeout=10)
    os.killpg(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait()
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING  # nobody else would ever finish it
    reaped = wait_until(lambda: job_reap(stale_after=timedelta(seconds=2)), timeout=20)
    assert reaped == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped responding" in job.error
