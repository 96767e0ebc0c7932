"""`manage.py realtime_api_key`: make, list and revoke keys of the server API (docs/api.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...keys import create_key
from ...models import ApiKey


class Command(BaseCommand):
    help = "Make (the key is printed once), list or revoke keys of the server API."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a key and print it (only now)")
        create.add_argument("name", help="who uses it: 'billing service'")
        create.add_argument("--topic", action="append", dest="topics", metavar="PATTERN", required=True,
                            help="a topic it may publish to and read (repeat it; a trailing * matches any rest)")
        create.add_argument("--may-disconnect", action="store_true",
                            help="it may also end the sessions of the users its topics admit (user:<id>)")
        actions.add_parser("list", help="the keys: prefix, name, topics, and revoked ones")
        revoke = actions.add_parser("revoke", help="refuse a key from now on")
        revoke.add_argument("prefix", help="the key's prefix (rtk_<prefix>_...)")

    def handle(self, action, **options):
        getattr(self, action)(**options)

    def create(self, name, topics, may_disconnect, **options):
        row, key = create_key(name, topics, may_disconnect)
        self.stderr.write(f"API key {row.prefix} ({name}): store it now, it is not shown again.")
        self.stdout.write(key)

    def list(self, **options):
        for row in ApiKey.objects.order_by("created"):
            state = f"revoked {row.revoked:%Y-%m-%d %H:%M}" if row.revoked else "active"
            disconnect = " may-disconnect" if row.may_disconnect else ""
            self.stdout.write(f"{row.prefix}  {state}  {row.name!r}  {row.topics}{disconnect}")

    def revoke(self, prefix, **options):
        prefix = prefix.removeprefix("rtk_").split("_")[0]
        if not ApiKey.objects.filter(prefix=prefix).update(revoked=timezone.now()):
            raise CommandError(f"No API key {prefix!r}.")
        self.stdout.write(f"revoked {prefix}")
