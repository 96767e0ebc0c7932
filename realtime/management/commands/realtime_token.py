"""`manage.py realtime_token USERNAME`: a token for a script or an app (docs/protocol.md, Tokens)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ... import conf
from ...channels.tokens import issue_token


class Command(BaseCommand):
    help = "Print a token a socket authenticates with as USERNAME (it dies when the password changes)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--max-age", type=float, default=None,
                            help=f"seconds it is valid (default WEBSOCKET_TOKEN_MAX_AGE: "
                                 f"{conf.DEFAULTS['WEBSOCKET_TOKEN_MAX_AGE']:g})")
        parser.add_argument("--topic", action="append", dest="topics", metavar="TOPIC",
                            help="a topic it may join (repeat it; a trailing * matches any rest); default: any")

    def handle(self, username, max_age, topics, **options):
        if max_age is not None and max_age <= 0:
            raise CommandError("--max-age must be a positive number of seconds.")
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None or not user.is_active:
            raise CommandError(f"No active user {username!r}.")
        token, _expires = issue_token(user, topics=topics, max_age=max_age)
        self.stdout.write(token)
