import sys

from django.core.management.base import BaseCommand

from portal.services.audit import audit_export_lines


class Command(BaseCommand):
    help = "Write the audit chain as JSON Lines (one event with its hash per line)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", default="-", help="File to write; '-' for stdout.")

    def handle(self, *args, **options):
        out = sys.stdout if options["output"] == "-" else open(options["output"], "w", encoding="utf-8")
        try:
            out.writelines(audit_export_lines())
        finally:
            if out is not sys.stdout:
                out.close()
