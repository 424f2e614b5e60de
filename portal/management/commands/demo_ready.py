import signal
import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand

from portal.demo import USERS


class Command(BaseCommand):
    help = "For `make demo`: wait until the portal and MLflow answer, print where to go, then idle."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=180)

    def handle(self, *args, **options):
        deadline = time.monotonic() + options["timeout"]
        status = "unknown"
        while time.monotonic() < deadline:
            try:
                status = requests.get(settings.SITE_URL + "/healthz", timeout=3).json()["status"]
            except (requests.RequestException, ValueError):
                status = "starting"
            if status == "ok":
                break
            time.sleep(1)
        if status == "ok":
            self._grow_demo_data()
        self.stdout.write(self.style.SUCCESS(f"\nThe portal is up ({status}): {settings.SITE_URL}"))
        self.stdout.write(f"MLflow: {settings.MLFLOW_TRACKING_URI}   API docs: {settings.SITE_URL}/api/v1/docs/")
        self.stdout.write(f"Sign in with any of these (password {settings.DEMO_PASSWORD!r}):")
        for u in USERS:
            self.stdout.write(f"  {u.username:<6} {u.role_label}")
        self.stdout.write("Ctrl-C stops everything.\n")
        signal.pause()  # honcho stops every process when one exits; stay until Ctrl-C

    def _grow_demo_data(self) -> None:
        """Demo models in MLflow (idempotent), the portal's webhook there, and a first sync."""
        from django.core.management import call_command

        from catalog.services.webhooks import mlflow_webhook_register

        try:
            call_command("seed_scaffolder_demo")  # the golden-path templates (no MLflow needed)
        except Exception as exc:
            self.stderr.write(f"Could not register the golden-path templates: {exc}")
        try:
            call_command("seed_descriptor_demo")
            call_command("seed_mlflow_demo")
            mlflow_webhook_register(tracking_uri=settings.MLFLOW_TRACKING_URI, portal_url=settings.SITE_URL)
            call_command("sync_mlflow")
        except Exception as exc:  # the portal still works; say what failed
            self.stderr.write(f"Could not load the demo models into MLflow: {exc}")
            return
        try:
            call_command("seed_governance_demo")
        except Exception as exc:
            self.stderr.write(f"Could not create the demo promotion requests: {exc}")
