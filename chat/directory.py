"""The room directory (topic `rooms`): the public rooms with the most members, on every worker.

ONE greenlet per worker process computes it every DIRECTORY_INTERVAL seconds while this process has
members of the topic (not once per member), and pushes it, encoded once, when it changed. The work
is bounded: the DIRECTORY_SCAN busiest public rooms (by message count) are counted, one presence
read each, and the DIRECTORY_SIZE with the most members are listed.
"""

import logging

import gevent

from realtime.db import run_read
from realtime.envelope import envelope
from realtime.fanout.brokers.base import UNREACHABLE
from realtime.fanout.hub import get_hub
from realtime.presence import get_presence
from realtime.supervisor import supervisor

from .models import Room
from .services import room_channel

log = logging.getLogger("chat")

DIRECTORY_CHANNEL = "local:rooms"
DIRECTORY_INTERVAL = 2.0
DIRECTORY_SIZE = 20
DIRECTORY_SCAN = 100


class Directory:
    def __init__(self):
        self.latest = {"rooms": []}
        self.loop = supervisor.spawn("rooms-directory", self.run)

    def run(self):
        while True:
            if get_hub().has_members(DIRECTORY_CHANNEL):
                self.refresh()
            gevent.sleep(DIRECTORY_INTERVAL)

    def refresh(self):
        names = run_read(lambda: list(busiest_public_rooms()))
        counted = [{"name": name, "count": count} for name in names if (count := member_count(name))]
        rooms = sorted(counted, key=lambda room: (-room["count"], room["name"]))[:DIRECTORY_SIZE]
        if rooms != self.latest["rooms"]:
            self.latest = {"rooms": rooms}
            get_hub().deliver_here(DIRECTORY_CHANNEL, envelope("rooms", self.latest).encode())


def busiest_public_rooms():
    """The names of the DIRECTORY_SCAN public rooms with the most messages (an index serves it: models.py)."""
    return Room.objects.filter(private=False).order_by("-last_seq").values_list("name", flat=True)[:DIRECTORY_SCAN]


def member_count(room_name):
    """A room's members on every worker (0 while presence is unreachable)."""
    try:
        return get_presence().store.page(room_channel(room_name), "", 1, {}).count
    except UNREACHABLE as error:
        log.warning("room directory: no count for %s: %s", room_name, error)
        return 0


_directory = None


def get_directory():
    """This process's directory, started on first use."""
    global _directory
    if _directory is None:
        _directory = Directory()
    return _directory
