from django.core.management.base import BaseCommand, CommandError

from portal.services.audit import AuditKeyMissing, audit_checkpoint_create


class Command(BaseCommand):
    help = "Sign a checkpoint of the audit chain's head with the key in AUDIT_SIGNING_KEY_FILE."

    def handle(self, *args, **options):
        try:
            checkpoint = audit_checkpoint_create()
        except AuditKeyMissing as exc:
            raise CommandError(str(exc)) from exc
        if checkpoint is None:
            self.stdout.write("Nothing new since the last checkpoint.")
        else:
            self.stdout.write(f"Checkpoint at event #{checkpoint.seq} ({checkpoint.hash[:12]}…) signed.")
