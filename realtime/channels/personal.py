"""`user:<id>`: every socket of one user, on every worker (notifications). Built into the layer:
joinable only by that user (its session or a token), and reached by `realtime.notify(user, ...)`."""

from ..envelope import envelope
from ..fanout.brokers import publish as broker_publish
from .channel import Channel
from .errors import Forbidden
from .routing import topic


def user_topic(user):
    """The personal topic of a user (or of a user's primary key)."""
    return f"user:{getattr(user, 'pk', user)}"


class PersonalChannel(Channel):
    def join(self, params):
        if not self.user.is_authenticated:
            raise Forbidden("Log in (or authenticate with a token) to join your own topic.")
        if str(self.user.pk) != self.kwargs["user_id"]:
            raise Forbidden(f"{self.topic!r} is another user's topic; yours is {user_topic(self.user)!r}.")
        return {}


topicpatterns = [topic("user:<str:user_id>", PersonalChannel, name="user")]


def publish(topic_name, event, data):
    """Push `event` with `data` to every member of a topic, on every worker, from any process (the
    frame is encoded once; BrokerUnavailable when the broker cannot be reached)."""
    broker_publish(topic_name, envelope(event, data))


def notify(user, event, data):
    """Push `event` to every socket of `user` (a user or its primary key) that joined its topic."""
    publish(user_topic(user), event, data)
