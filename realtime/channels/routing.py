"""Topics routed to channel classes as paths are to views, with Django's own URL machinery.

Each app declares its topics next to its code, in `<app>/channels.py`::

    topicpatterns = [topic("chat:<slug:room>", RoomChannel)]

and the project's WEBSOCKET_URLCONF includes them, as it includes the apps' `urlpatterns`::

    topicpatterns = [include_topics("chat.channels"), include_topics("jobs.channels")]

Patterns are Django's (`path` converters, `re_path` regexes); the route's keyword arguments go to
the channel (`self.kwargs`). `user:<id>` is the layer's own, always routed first.
"""

from importlib import import_module

from django.core.signals import setting_changed
from django.urls import Resolver404, URLResolver, include, path, re_path
from django.urls.resolvers import RegexPattern

from .. import conf


def topic(pattern, channel, name=None):
    """A route from the topics matching `pattern` (`path` syntax: "chat:<slug:room>") to `channel`."""
    return path(pattern, channel, name=name)


def re_topic(regex, channel, name=None):
    """The same with a regular expression (`re_path` syntax: r"^chat:(?P<room>[a-z]+)$")."""
    return re_path(regex, channel, name=name)


def include_topics(module):
    """Every route of `module`'s `topicpatterns` (a dotted path or the module itself)."""
    if isinstance(module, str):
        module = import_module(module)
    return path("", include(list(module.topicpatterns)))


def admitted(topic_name, patterns):
    """Whether a list of topic patterns (a token's, an API key's) admits a topic: each is a topic
    name, or ends with `*`, which matches any rest (`user:*`)."""
    return any(topic_name == pattern or (pattern.endswith("*") and topic_name.startswith(pattern[:-1]))
               for pattern in patterns)


class UnknownTopic(LookupError):
    pass


class TopicRouter:
    def __init__(self, patterns):
        self.resolver = URLResolver(RegexPattern(r"^"), patterns)

    def resolve(self, name):
        """(channel class, route kwargs) for a topic name; UnknownTopic when no route matches."""
        try:
            match = self.resolver.resolve(name)
        except Resolver404:
            raise UnknownTopic(name) from None
        return match.func, match.kwargs


_router = None


def get_router():
    """This process's router: the layer's topics, then WEBSOCKET_URLCONF's `topicpatterns`."""
    global _router
    if _router is None:
        urlconf = import_module(conf.get("WEBSOCKET_URLCONF"))
        _router = TopicRouter([include_topics("realtime.channels.personal"),
                               *getattr(urlconf, "topicpatterns", [])])
    return _router


def _forget(setting, **kwargs):
    global _router
    if setting == "WEBSOCKET_URLCONF":
        _router = None


setting_changed.connect(_forget)
