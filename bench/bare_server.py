"""The anchor: a bare gevent-websocket server, no Django.

    gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker bench.bare_server:application

A plain WSGI app with gevent-websocket's own WebSocket object: `/echo/` echoes, `/chat/<room>/`
speaks the essentials of our room protocol (welcome, then `message` events), without a database.
Each worker process holds ONE Redis PubSub connection (a pattern subscription to every room),
read by one greenlet that sends each message to the process's sockets in that room, in turn.
"""

import itertools
import json
import os
import random
import re
from datetime import datetime, timezone

import gevent
import redis
from gevent.event import Event

from realtime.envelope import iso_utc

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOM_PATH = re.compile(r"^/chat/([a-z0-9_-]{1,64})/$")
CHANNEL_PREFIX = "bare:"

rooms = {}  # room name -> set of this process's sockets in it
subscribed = Event()
publisher = None
message_ids = itertools.count(1)


def envelope(event, data):
    return json.dumps({"event": event, "data": data})


def listen():
    """The one PubSub greenlet of this process: every room message to every local member."""
    pubsub = redis.Redis.from_url(REDIS_URL).pubsub()
    pubsub.psubscribe(CHANNEL_PREFIX + "*")
    for message in pubsub.listen():
        if message["type"] == "psubscribe":
            subscribed.set()
        elif message["type"] == "pmessage":
            room = message["channel"].decode()[len(CHANNEL_PREFIX):]
            text = message["data"].decode()
            for ws in list(rooms.get(room, ())):
                try:
                    ws.send(text)
                except Exception:
                    rooms[room].discard(ws)


def start_listener():
    # Started on the first request, inside the (forked, gevent-patched) worker process.
    global publisher
    if publisher is None:
        publisher = redis.Redis.from_url(REDIS_URL)
        gevent.spawn(listen)
    subscribed.wait(5)


def echo(ws):
    while (message := ws.receive()) is not None:
        ws.send(message)


def chat(ws, room):
    name, color = f"guest-{random.randrange(16**4):04x}", "#4363d8"
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        ws.send(envelope("welcome", {"room": room, "name": name, "color": color}))
        while (raw := ws.receive()) is not None:
            try:
                text = str(json.loads(raw)["data"]["text"]).strip()
            except (ValueError, KeyError, TypeError):
                continue
            if 1 <= len(text) <= 2000:
                publisher.publish(CHANNEL_PREFIX + room, envelope("message", {
                    "id": next(message_ids), "room": room, "name": name, "color": color, "text": text,
                    "ts": iso_utc(datetime.now(timezone.utc))}))
    finally:
        members.discard(ws)


def application(environ, start_response):
    ws = environ.get("wsgi.websocket")
    path = environ.get("PATH_INFO", "")
    room = ROOM_PATH.match(path)
    if ws is None or not (path == "/echo/" or room):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_listener()
    if room:
        chat(ws, room.group(1))
    else:
        echo(ws)
    return []
