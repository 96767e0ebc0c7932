"""The JSON envelope every application message uses: {"event": "...", "data": {...}}.

Every envelope route also answers the client heartbeat: {"event": "ping"} gets {"event": "pong"}.
"""

import json
from datetime import timezone


class ClientError(Exception):
    """Bad input from a client: it gets an `error` event with this code and detail, and stays connected."""

    def __init__(self, code, detail, fields=None):
        super().__init__(detail)
        self.code, self.detail, self.fields = code, detail, fields

    def as_event(self):
        data = {"code": self.code, "detail": self.detail}
        if self.fields:
            data["fields"] = self.fields
        return envelope("error", data)


def iso_utc(moment):
    """An aware datetime as every event writes times: ISO 8601 in UTC ending in Z."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def envelope(event, data):
    """The text frame for an event (compact JSON; non-ASCII text kept as is)."""
    return json.dumps({"event": event, "data": data}, separators=(",", ":"), ensure_ascii=False)


def rate_limited_notice(rate):
    """The `error` event a client gets when a message of its was dropped for the rate limit."""
    return envelope("error", {
        "code": "rate_limited",
        "detail": f"Too many messages: at most {rate:g} per second. This one was dropped; "
                  f"keep flooding and the connection is closed (1008)."})


def parse_envelope(message):
    """(event, data) from a client's message, or ClientError saying what is wrong with it."""
    if not isinstance(message, str):
        raise ClientError("binary_not_supported", "Send JSON text frames, not binary.")
    try:
        decoded = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: nested too deep ([[[[...)
        raise ClientError("invalid_json", "The message is not valid JSON.") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("event"), str):
        raise ClientError("invalid_envelope", 'Expected {"event": "<name>", "data": {...}}.')
    data = decoded.get("data", {})
    if not isinstance(data, dict):
        raise ClientError("invalid_envelope", '"data" must be a JSON object.')
    return decoded["event"], data


def receive_events(ws):
    """Yield (event, data) for each client message until the connection closes.

    Answers the client's heartbeat itself (`ping` gets `pong` with the same data: the browser
    cannot see WebSocket ping frames, so it proves the connection is alive this way), and
    answers a malformed message with an `error` event, keeping the connection open.
    """
    while (raw := ws.receive()) is not None:
        try:
            event, data = parse_envelope(raw)
        except ClientError as error:
            ws.send(error.as_event())
            continue
        if event == "ping":
            ws.send(envelope("pong", data))
            continue
        yield event, data
