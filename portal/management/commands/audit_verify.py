import json
import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.services.audit import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit chain and signed checkpoints (or, with --export, an exported file and its digest); "
        "names the first bad event and exits 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=min(2, os.cpu_count() or 1),
            help="Processes that check ranges of a long chain in parallel (default: 2).",
        )
        parser.add_argument("--export", type=Path, help="An exported file (JSON Lines or CSV) to check offline.")
        parser.add_argument("--digest", type=Path, help="The export's digest (JSON from the digest endpoint).")
        parser.add_argument("--public-key", type=Path, help="The published audit public key (PEM) to pin.")

    def handle(self, *args, **options):
        if options["export"]:
            return self._export(options)
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

    def _export(self, options):
        from portal.services.audit_export import verify_export

        digest = json.loads(options["digest"].read_text()) if options["digest"] else None
        key = options["public_key"].read_bytes() if options["public_key"] else None
        try:
            check = verify_export(options["export"], digest, trusted_public_key_pem=key)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"Cannot read the export or its digest: {exc}") from exc
        for note in check.notes:
            self.stderr.write(f"note: {note}")
        if not check.ok:
            raise CommandError("FAILED: " + "; ".join(check.problems))
        signed = " and its signed digest" if digest else " (no digest given: the file's end is not checked)"
        self.stdout.write(self.style.SUCCESS(f"OK: {check.events} events chained in {options['export'].name}{signed}"))
