from django.conf import settings
from django.core.management.base import BaseCommand

from portal.demo import seed_demo
from portal.services.audit import audit_signing_key_generate


class Command(BaseCommand):
    help = "Create the demo teams and users (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        audit_signing_key_generate()
        users = seed_demo()
        if options["quiet_logins"]:
            return
        port = settings.SITE_URL
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDemo logins for {port}  (password: {settings.DEMO_PASSWORD!r} unless DEMO_PASSWORD was set)"
            )
        )
        for u in users:
            self.stdout.write(f"  {u.username:<6} {u.role_label}")
        self.stdout.write("")
