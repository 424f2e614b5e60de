import os
import time

from django.core.management.base import BaseCommand, CommandError

from portal.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit chain and signed checkpoints; names the first bad event and exits 1 if any."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=min(2, os.cpu_count() or 1),
            help="Processes that check ranges of a long chain in parallel (default: 2).",
        )

    def handle(self, *args, **options):
        started = time.perf_counter()
        result = audit_verify(workers=options["workers"])
        elapsed = time.perf_counter() - started
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        if not result.ok:
            raise CommandError(
                f"FAILED at event #{result.first_bad_seq}: {result.reason} ({result.checked} events checked)"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {result.checked} events, {result.checkpoints} signed checkpoints, head #{result.last_seq} "
                f"({elapsed:.2f} s)"
            )
        )
