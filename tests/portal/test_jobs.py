from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import Job, JobStatus
from portal.services.jobs import job_enqueue, job_reap
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


def run_selftest(user, django_capture_on_commit_callbacks, **params):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_enqueue(kind="portal.selftest", title="Self-test", user=user, params={"pause_seconds": 0, **params})
    job.refresh_from_db()
    return job


def test_selftest_job_records_steps_log_and_result(demo_users, django_capture_on_commit_callbacks, settings):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    job = run_selftest(demo_users["admin"], django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED
    assert [s["name"] for s in job.steps] == ["Check database", "Check broker", "Check mlflow", "Summarise"]
    assert all(s["status"] == "succeeded" and s["duration_seconds"] >= 0 for s in job.steps)
    assert job.result == {"checks": {"database": "ok", "broker": "ok", "mlflow": "down"}}
    messages = list(job.log_lines.values_list("message", flat=True))
    assert "Not answering: mlflow." in messages
    assert job.started_at and job.finished_at and job.attempts == 1


def test_failing_step_fails_the_job_with_a_clear_error(demo_users, django_capture_on_commit_callbacks, settings):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    job = run_selftest(demo_users["admin"], django_capture_on_commit_callbacks, require=["mlflow"])
    assert job.status == JobStatus.FAILED
    assert "mlflow is down" in job.error
    assert job.steps[-1] == job.steps[2] and job.steps[2]["status"] == "failed"


def test_job_api_returns_status_steps_log_and_times(
    api_client, demo_users, django_capture_on_commit_callbacks, make_token
):
    job = run_selftest(demo_users["admin"], django_capture_on_commit_callbacks)
    body = api_client.get(
        f"/api/v1/jobs/{job.pk}/", HTTP_AUTHORIZATION=f"Bearer {make_token(demo_users['admin'])}"
    ).json()
    assert {"id", "status", "steps", "log", "started_at", "finished_at", "result"} <= set(body)
    assert body["id"] == job.pk and body["status"] == "succeeded" and body["log"][0]["message"]


def test_jobs_are_visible_only_to_who_started_them_or_admins(client, demo_users, django_capture_on_commit_callbacks):
    job = run_selftest(demo_users["admin"], django_capture_on_commit_callbacks)
    client.force_login(demo_users["dana"])
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post("/jobs/selftest/").status_code == 403


def test_admin_starts_selftest_from_the_browser(client, demo_users, django_capture_on_commit_callbacks):
    client.force_login(demo_users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/jobs/selftest/")
    job = Job.objects.get()
    assert response.url == f"/jobs/{job.pk}/"
    page = client.get(response.url).content.decode()
    assert "Check database" in page and "succeeded" in page


def test_live_partial_returns_new_log_lines_out_of_band(client, demo_users, django_capture_on_commit_callbacks):
    job = run_selftest(demo_users["admin"], django_capture_on_commit_callbacks)
    client.force_login(demo_users["admin"])
    first = job.log_lines.first()
    body = client.get(f"/jobs/{job.pk}/?after={first.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="job-live"') and 'hx-swap-oob="beforeend:#job-log"' in body
    assert f'id="log-{first.pk}"' not in body and f'id="log-{first.pk + 1}"' in body
    assert "<html" not in body


def test_cancel_a_queued_job(client, demo_users):
    job = job_enqueue(kind="portal.selftest", title="Self-test", user=demo_users["admin"])
    client.force_login(demo_users["admin"])
    client.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at


def running_job(user, *, heartbeat_age, attempts=1, max_attempts=1):
    return Job.objects.create(
        kind="portal.selftest",
        title="t",
        created_by=user,
        status=JobStatus.RUNNING,
        attempts=attempts,
        max_attempts=max_attempts,
        started_at=timezone.now() - heartbeat_age,
        heartbeat_at=timezone.now() - heartbeat_age,
        worker="w1:123",
    )


def test_reaper_fails_jobs_whose_worker_stopped_heart_beating(demo_users):
    stale = running_job(demo_users["admin"], heartbeat_age=timedelta(minutes=5))
    alive = running_job(demo_users["admin"], heartbeat_age=timedelta(seconds=1))
    assert job_reap() == [stale.pk]
    stale.refresh_from_db(), alive.refresh_from_db()
    assert stale.status == JobStatus.FAILED and "stopped responding" in stale.error and "w1:123" in stale.error
    assert alive.status == JobStatus.RUNNING


def test_reaper_requeues_jobs_with_attempts_left(demo_users, django_capture_on_commit_callbacks):
    stale = running_job(demo_users["admin"], heartbeat_age=timedelta(minutes=5), max_attempts=2)
    with django_capture_on_commit_callbacks(execute=True):
        job_reap()
    stale.refresh_from_db()
    assert stale.status == JobStatus.SUCCEEDED and stale.attempts == 2


def test_unknown_job_kind_is_refused(demo_users):
    with pytest.raises(ValueError, match="unknown job kind"):
        job_enqueue(kind="nope", title="x", user=demo_users["admin"])


def test_reaper_resends_jobs_stuck_in_the_queue(demo_users):
    job = job_enqueue(kind="portal.selftest", title="Self-test", user=demo_users["admin"], params={"pause_seconds": 0})
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    job_reap()  # eager in unit tests: the re-sent message runs at once
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
