from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from portal.context import audit_context
from portal.models import Scope, Team
from portal.services.tokens import token_create

User = get_user_model()


class Command(BaseCommand):
    help = "Create an API token and print only the token on stdout (so CI can capture it)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--user", required=True, help="Username the token belongs to (or who creates a team token)."
        )
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'ci'.")
        parser.add_argument(
            "--scope",
            action="append",
            choices=Scope.values,
            dest="scopes",
            help="Repeat for several scopes. Default: read.",
        )
        parser.add_argument("--team", help="Create a team service-account token (the user must maintain the team).")
        parser.add_argument("--expires-in-days", type=int, default=None, help="0 = never. Default: 90.")

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["user"])
        except User.DoesNotExist as exc:
            raise CommandError(f"No user {options['user']!r}.") from exc
        team = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"No team {options['team']!r}.")
        with audit_context(user=user, request_id="cli-create-token"):
            try:
                created = token_create(
                    actor=user,
                    name=options["name"],
                    scopes=options["scopes"] or [Scope.READ],
                    team=team,
                    expires_in_days=options["expires_in_days"],
                )
            except PermissionDenied as exc:
                raise CommandError(str(exc)) from exc
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(created.secret)
