from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from chat.services import post_message
from realtime.brokers import BrokerUnavailable


class Command(BaseCommand):
    help = "Post a message into a chat room: stored, and delivered to everyone connected."

    def add_arguments(self, parser):
        parser.add_argument("room")
        parser.add_argument("text")
        parser.add_argument("--name", default="server")
        parser.add_argument("--color", default="#555555")

    def handle(self, room, text, name, color, **options):
        try:
            message = post_message(room, text, name=name, color=color)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except BrokerUnavailable as error:
            raise CommandError(f"stored, but not delivered live: {error}") from None
        self.stdout.write(f"posted message {message.seq} to {room}")
