from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from chat.services import post_message
from realtime.fanout.brokers import BrokerUnavailable


class Command(BaseCommand):
    help = "Post a message into a chat room: stored, and delivered to everyone connected."

    def add_arguments(self, parser):
        parser.add_argument("room")
        parser.add_argument("text")
        parser.add_argument("--name", default="server")
        parser.add_argument("--color", default="#555555")
        parser.add_argument("--nonce", help="an id of this message: run again with the same one (a retry), "
                                            "it is not posted twice and the first one's id is printed")

    def handle(self, room, text, name, color, nonce, **options):
        try:
            message = post_message(room, text, name=name, color=color, nonce=nonce, sender="chat_say")
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except BrokerUnavailable as error:
            raise CommandError(f"stored as message {error.message.seq}, but not delivered live: {error}") from None
        self.stdout.write(f"posted message {message.seq} to {room}")
