import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from catalog.job_kinds import SYNC_MLFLOW
from portal.models import Job, JobStatus
from portal.services.jobs import job_enqueue, job_run

FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class Command(BaseCommand):
    help = "Sync MLflow's model registry into the catalog (runs the job here unless --async)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Re-read every model, changed or not.")
        parser.add_argument("--async", dest="run_async", action="store_true", help="Only queue the job for a worker.")

    def handle(self, *args, **options):
        full = options["full"]
        with transaction.atomic():
            job = job_enqueue(
                kind=SYNC_MLFLOW,
                title=f"{'Full' if full else 'Incremental'} MLflow sync",
                params={"full": full},
            )
        if options["run_async"]:
            self.stdout.write(f"Queued job #{job.pk} ({job.title}) for {settings.MLFLOW_TRACKING_URI}.")
            return
        if job_run(job_id=job.pk) is None:
            # A worker (or an eager Celery) claimed it first: follow it instead.
            self.stdout.write(f"Job #{job.pk} was picked up by a worker; waiting for it…")
            while Job.objects.filter(pk=job.pk).exclude(status__in=FINISHED).exists():
                time.sleep(0.5)
        job.refresh_from_db()
        verbosity = options["verbosity"]
        for line in job.log_lines.order_by("id"):
            if line.level not in ("debug", "error") or verbosity > 1:
                self.stdout.write(f"[{line.level}] {line.message}")
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Job #{job.pk} {job.status}: {job.error}")
        summary = job.result or {}
        self.stdout.write(self.style.SUCCESS("Synced: " + ", ".join(f"{k}={v}" for k, v in summary.items())))
