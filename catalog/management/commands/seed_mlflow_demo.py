import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.demo_mlflow import DemoSetupError, seed_mlflow_demo
from catalog.services.mlflow_reads import MlflowUnavailable


class Command(BaseCommand):
    help = "Register the demo models (small scikit-learn models) in MLflow; idempotent. Then run sync_mlflow."

    def handle(self, *args, **options):
        started = time.monotonic()
        try:
            done = seed_mlflow_demo(settings.MLFLOW_TRACKING_URI)
        except (DemoSetupError, MlflowUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(f"  {line}")
        what = f"{len(done)} changes" if done else "nothing to do, already seeded"
        self.stdout.write(
            self.style.SUCCESS(
                f"MLflow demo at {settings.MLFLOW_TRACKING_URI}: {what} ({time.monotonic() - started:.1f} s)."
            )
        )
