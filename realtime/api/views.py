"""The server API's endpoints (docs/api.md): POST, JSON in and out, a key in `Authorization: Bearer`.

Every call: the key (401/403), the body's size (413), the key's rate (429 + Retry-After: one Redis
round trip, realtime/budgets.py), the JSON, then the work. Refused calls do nothing. No session, no
cookie: CSRF does not apply, and a page of the site cannot call the API with its visitor's login.
"""

import functools
import json
import math
import re

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import budgets
from ..channels import ChannelError, user_topic
from ..channels.revocation import disconnect as disconnect_user
from ..channels.frames import MAX_EVENT_LENGTH, MAX_TOPIC_LENGTH
from ..channels.routing import UnknownTopic, admitted, get_router
from ..fanout.brokers import BrokerUnavailable
from ..presence import get_presence
from . import conf
from .keys import Refused, authenticate

SENDER = "api:{}"  # who stores what a key publishes (a nonce is unique per room and sender)
EVENT = re.compile(r"[a-z][a-z0-9_]*")
RESERVED_EVENTS = {"reply", "close", "resync"}  # what clients read as the layer's own
MAX_BROADCAST_TOPICS = 100
MAX_HISTORY_PAGE = 100
MAX_IDEMPOTENCY_KEY = 64
MAX_REASON_BYTES = 120  # a close reason holds at most 123 bytes
STATUS = {"forbidden": 403, "not_publishable": 403, "unknown_topic": 404, "no_history": 404, "no_presence": 404, "too_large": 413,
          "rate_limited": 429, "delivery_degraded": 503, "broker_unavailable": 503, "presence_unavailable": 503}


def api_call(cost=lambda body: 1):
    """A view of the API: `handler(key, body, request)` returns the answer (a dict) or raises
    ChannelError; `cost(body)` is what the call spends of the key's rate (a broadcast: its topics)."""
    def decorate(handler):
        @csrf_exempt
        @functools.wraps(handler)
        def view(request):
            try:
                if request.method != "POST":
                    return answer({"code": "method_not_allowed", "detail": "Use POST."}, 405)
                key = authenticate(request.META.get("HTTP_AUTHORIZATION"))
                body = read_body(request)
                rate = budgets.Rate(conf.get("REALTIME_API_RATE"), conf.get("REALTIME_API_BURST"))
                wait = budgets.spend("api", key.prefix, rate, cost(body))
                if wait:
                    raise ChannelError("rate_limited", f"Over this key's rate ({rate.per_second:g} calls a second): "
                                                       "nothing was done; try again later.", retry_after=round(wait, 3))
                return answer(handler(key, body, request))
            except Refused as refused:
                return answer({"code": refused.code, "detail": refused.detail}, refused.status)
            except ChannelError as refused:
                response = answer({"code": refused.code, "detail": refused.detail, **refused.extra},
                                  STATUS.get(refused.code, 400))
                if "retry_after" in refused.extra:
                    response["Retry-After"] = str(math.ceil(refused.extra["retry_after"]))
                return response
            except BrokerUnavailable:
                return answer({"code": "broker_unavailable", "detail": "The broker is unavailable: nothing was "
                                                                       "delivered; try again."}, 503)
        return view
    return decorate


def answer(data, status=200):
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def read_body(request):
    """The request's JSON object; `too_large` past REALTIME_API_MAX_BODY bytes (not read further)."""
    limit = conf.get("REALTIME_API_MAX_BODY")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    raw = b"" if declared > limit else request.read(limit + 1)
    if declared > limit or len(raw) > limit:
        raise ChannelError("too_large", f"The body is over {limit} bytes.")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ChannelError("invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ChannelError("invalid_request", "The body must be a JSON object.")
    return body


# --- what a call names ------------------------------------------------------------------------

def channel_of(key, topic):
    """(the Channel class serving `topic`, its route's kwargs), if the key admits the topic."""
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise ChannelError("invalid_request", f'"topic" must be a string of 1-{MAX_TOPIC_LENGTH} characters.')
    if not admitted(topic, key.patterns):
        raise ChannelError("forbidden", f"This key may not use {topic!r}; its topics: {key.topics}.")
    try:
        return get_router().resolve(topic)
    except UnknownTopic:
        raise ChannelError("unknown_topic", f"No channel serves {topic!r}.") from None


def event_of(body):
    event, data = body.get("event"), body.get("data", {})
    if not isinstance(event, str) or len(event) > MAX_EVENT_LENGTH or not EVENT.fullmatch(event):
        raise ChannelError("invalid_request", f'"event" must be 1-{MAX_EVENT_LENGTH} of a-z, 0-9 and _, starting with a letter.')
    if event in RESERVED_EVENTS:
        raise ChannelError("invalid_request", f'"{event}" is an event of the layer itself: choose another name.')
    if not isinstance(data, dict):
        raise ChannelError("invalid_request", '"data" must be a JSON object.')
    return event, data


def idempotency_key(request):
    nonce = request.headers.get("Idempotency-Key")
    if nonce is not None and not 0 < len(nonce) <= MAX_IDEMPOTENCY_KEY:
        raise ChannelError("invalid_request", f"Idempotency-Key: 1-{MAX_IDEMPOTENCY_KEY} characters.")
    return nonce


def user_of(body):
    user = body.get("user")
    if isinstance(user, bool) or not isinstance(user, (int, str)) or not str(user).isdigit():
        raise ChannelError("invalid_request", '"user": the id of a user (an integer).')
    return int(user)


def publish_to(key, request, targets, event, data):
    """Publish to each (topic, channel class, kwargs) checked already: {"topic", ...} per topic."""
    nonce = idempotency_key(request)
    if nonce is not None and not all(channel.has_history for _, channel, _ in targets):
        raise ChannelError("invalid_request", "Idempotency-Key is honoured on topics with history only "
                                              "(a chat room); this call names a topic without.")
    for topic, channel, _ in targets:
        if not channel.server_publishes:
            raise ChannelError("not_publishable", f"{topic!r} is fed by the server alone: nothing published to it "
                                                  "would reach its members.")
    results = []
    for topic, channel, kwargs in targets:
        try:
            results.append({"topic": topic, **channel.publish_from_server(topic, kwargs, event, data,
                                                                           SENDER.format(key.prefix), nonce)})
        except (ChannelError, BrokerUnavailable) as refused:
            if len(targets) == 1:
                raise
            if isinstance(refused, BrokerUnavailable):  # (a broadcast: the topics before it were published)
                refused = ChannelError("broker_unavailable", "The broker is unavailable: not delivered.")
            results.append({"topic": topic, "error": {"code": refused.code, "detail": refused.detail, **refused.extra}})
    return results


# --- the endpoints ----------------------------------------------------------------------------

@api_call()
def publish(key, body, request):
    event, data = event_of(body)
    topic = body.get("topic")
    return publish_to(key, request, [(topic, *channel_of(key, topic))], event, data)[0]


@api_call()
def notify(key, body, request):
    event, data = event_of(body)
    topic = user_topic(user_of(body))
    return publish_to(key, request, [(topic, *channel_of(key, topic))], event, data)[0]


def topics_of(body):
    topics = body.get("topics")
    if (not isinstance(topics, list) or not 0 < len(topics) <= MAX_BROADCAST_TOPICS
            or len(set(map(str, topics))) != len(topics)):
        raise ChannelError("invalid_request", f'"topics": a list of 1-{MAX_BROADCAST_TOPICS} different topics.')
    return topics


@api_call(cost=lambda body: len(body["topics"]) if isinstance(body.get("topics"), list) else 1)
def broadcast(key, body, request):
    event, data = event_of(body)
    targets = [(topic, *channel_of(key, topic)) for topic in topics_of(body)]  # all checked before any is sent
    return {"results": publish_to(key, request, targets, event, data)}


@api_call()
def presence(key, body, request):
    topic, after = body.get("topic"), body.get("after", "")
    channel, _ = channel_of(key, topic)
    if not channel.has_presence:
        raise ChannelError("no_presence", f"{topic!r} keeps no member list.")
    if not isinstance(after, str) or len(after) > 64:
        raise ChannelError("invalid_request", '"after": "" (the first page) or the "next" of the page before.')
    page = get_presence().page(topic, after)
    if page is None:
        raise ChannelError("presence_unavailable", "The member list is unavailable for a moment; ask again later.")
    return {"topic": topic, "count": page.count, "members": page.members, "next": page.next}


@api_call()
def history(key, body, request):
    topic, before, limit = body.get("topic"), body.get("before"), body.get("limit", 50)
    channel, kwargs = channel_of(key, topic)
    if not channel.has_history:
        raise ChannelError("no_history", f"{topic!r} keeps no history.")
    for name, value, low in (("before", before, 1), ("limit", limit, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ChannelError("invalid_request", f'"{name}" must be a positive integer.')
    limit = min(limit, MAX_HISTORY_PAGE)
    rows = channel.read_history(topic, kwargs, before, limit)
    publications = [{"offset": offset, "event": event, "data": data} for offset, event, data in reversed(rows)]
    more = len(rows) == limit and rows[-1][0] > 1
    return {"topic": topic, "publications": publications, "before": rows[-1][0] if more else None}


@api_call()
def disconnect(key, body, request):
    user, reason = user_of(body), body.get("reason", "")
    if not key.may_disconnect:
        raise ChannelError("forbidden", "This key may not disconnect users (API key: may disconnect).")
    if not admitted(user_topic(user), key.patterns):
        raise ChannelError("forbidden", f"This key may not use {user_topic(user)!r}; its topics: {key.topics}.")
    if not isinstance(reason, str) or len(reason.encode()) > MAX_REASON_BYTES:
        raise ChannelError("invalid_request", f'"reason": a string of at most {MAX_REASON_BYTES} bytes.')
    disconnect_user(user, **({"detail": reason} if reason else {}))
    return {}
