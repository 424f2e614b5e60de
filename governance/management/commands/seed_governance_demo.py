from django.core.management.base import BaseCommand, CommandError

from governance.demo import DemoNotReady, seed_governance_demo


class Command(BaseCommand):
    help = "Demo promotion requests in every state (after seed_mlflow_demo and a sync). Idempotent."

    def handle(self, *args, **options):
        try:
            done = seed_governance_demo()
        except DemoNotReady as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(f"  {line}")
        if not done:
            self.stdout.write("Promotion requests exist already: nothing to do.")
