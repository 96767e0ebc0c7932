"""The realtime.v1 wire format (docs/protocol.md, Channels): what a client sends, what it is sent.

Client frames are JSON objects `{"topic", "event", "data", "ref"}`; the server sends pushes
`{"topic", "event", "data"}` (a publication of a topic with history also carries its "offset")
and replies `{"topic", "event": "reply", "ref", "data": {"status", "response"}}`.
"""

import json
from typing import NamedTuple

from ..envelope import ClientError

SYSTEM_TOPIC = "realtime"
MAX_REF_LENGTH = 64
MAX_TOPIC_LENGTH = 256
MAX_EVENT_LENGTH = 64


class Frame(NamedTuple):
    topic: str
    event: str
    data: dict
    ref: object  # a str or an int the client chose, or None: no reply wanted


class InvalidFrame(ClientError):
    """A frame that is not valid; it names what could be read of it (its ref, topic and event)."""

    def __init__(self, detail, ref=None, topic=None, event=None):
        super().__init__("invalid_frame", detail)
        self.ref, self.topic, self.event = ref, topic, event


def valid_ref(ref):
    return (isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH) or (isinstance(ref, int) and not isinstance(ref, bool))


def parse_frame(message):
    """The Frame a client sent, or InvalidFrame saying what is wrong with it."""
    if not isinstance(message, str):
        raise InvalidFrame("Send JSON text frames, not binary.")
    try:
        decoded = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: nested too deep ([[[[...)
        raise InvalidFrame("The frame is not valid JSON.") from None
    if not isinstance(decoded, dict):
        raise InvalidFrame('Expected a JSON object: {"topic": ..., "event": ..., "data": {...}, "ref": ...}.')
    ref = decoded.get("ref")
    if ref is not None and not valid_ref(ref):
        raise InvalidFrame(f'"ref" must be a string of at most {MAX_REF_LENGTH} characters or an integer.')
    topic, event, data = decoded.get("topic"), decoded.get("event"), decoded.get("data", {})
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH or not topic.isprintable():
        raise InvalidFrame(f'"topic" must be a string of 1-{MAX_TOPIC_LENGTH} printable characters.', ref)
    if not isinstance(event, str) or not 0 < len(event) <= MAX_EVENT_LENGTH:
        raise InvalidFrame(f'"event" must be a string of 1-{MAX_EVENT_LENGTH} characters.', ref, topic)
    if not isinstance(data, dict):
        raise InvalidFrame('"data" must be a JSON object.', ref, topic, event)
    return Frame(topic, event, data, ref)


def encode(frame):
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def push(topic, event, data, offset=None):
    frame = {"topic": topic, "event": event, "data": data}
    if offset is not None:
        frame["offset"] = offset
    return encode(frame)


def reply(topic, ref, response, **fields):
    """An ok reply: the response, and beside it what the layer adds (a join's `offset`, ...)."""
    return encode({"topic": topic, "event": "reply", "ref": ref,
                   "data": {"status": "ok", "response": response, **fields}})


def error_response(error):
    """What an error reply (or a `realtime` `error` push) says of a ClientError."""
    response = {"code": error.code, "detail": error.detail}
    if error.fields:
        response["fields"] = error.fields
    response.update(getattr(error, "extra", None) or {})
    return response


def error_reply(topic, ref, error):
    return encode({"topic": topic, "event": "reply", "ref": ref, "data": {"status": "error",
                                                                          "response": error_response(error)}})


def error_push(error, ref=None, topic=None, event=None):
    """A `realtime` `error` push: a frame that was not valid, or the error of one that had no ref."""
    data = error_response(error)
    for key, value in (("ref", ref), ("topic", topic), ("event", event)):
        if value is not None:
            data[key] = value
    return push(SYSTEM_TOPIC, "error", data)
