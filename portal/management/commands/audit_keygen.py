from django.conf import settings
from django.core.management.base import BaseCommand

from portal.services.audit import audit_signing_key_generate


class Command(BaseCommand):
    help = "Create the Ed25519 audit signing key at AUDIT_SIGNING_KEY_FILE unless it exists."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Replace an existing key.")

    def handle(self, *args, **options):
        existed = settings.AUDIT_SIGNING_KEY_FILE.exists()
        path = audit_signing_key_generate(overwrite=options["force"])
        self.stdout.write(f"{'Kept' if existed and not options['force'] else 'Wrote'} signing key {path}")
