from django.core.management.base import BaseCommand

from portal.services.jobs import job_reap


class Command(BaseCommand):
    help = "Fail (or retry) running jobs whose worker stopped heart-beating."

    def handle(self, *args, **options):
        reaped = job_reap()
        self.stdout.write(f"Reaped {len(reaped)} job(s){': ' + ', '.join(map(str, reaped)) if reaped else ''}.")
