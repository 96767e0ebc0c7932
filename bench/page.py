"""The `page` scenario: what a page's three topics (its chat room, its user's notifications, its
user's jobs) cost the server as ONE socket with three topics, and as three sockets of one topic
each (how pages connected before the channel layer): server memory per page, and joins/s.

Each layout gets a fresh stack, so neither inherits the other's memory. Every page is the same
user (tabs of one person, as a token says); its topics are joined on /socket/ (realtime.v1).
"""

import asyncio
import json
import os
import subprocess
import sys

from realtime.testing.channels import SUBPROTOCOL, bearer_offer

from .config import ROOM
from .loadgen import Crowd, now
from .scenarios import connect_deadline
from .servers import ROOT, production_env

LAYOUTS = {"one_socket": 1, "three_sockets": 3}  # sockets per page
SETTLE = 2.0  # seconds after the last join before memory is read (presence diffs, buffers)


def topics(user_id):
    return [f"chat:{ROOM}", f"user:{user_id}", f"jobs:user:{user_id}"]


def user_and_token(stack):
    """(the benchmark user's id, a token of it), from the stack's own database and secret."""
    database = stack.servers[0].extra_env["DATABASE_URL"]
    code = ("from django.contrib.auth.models import User; from realtime.channels.tokens import issue_token; "
            "user = User.objects.get_or_create(username='bench')[0]; print(user.pk, issue_token(user, max_age=3600)[0])")
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT, check=True,
                            capture_output=True, text=True, env={**os.environ, **production_env(DATABASE_URL=database)})
    user_id, token = result.stdout.split()
    return int(user_id), token


class Joins:
    """Replies to the joins sent, counted as they arrive (a reply is a frame with "event":"reply")."""

    def __init__(self, expected):
        self.expected, self.ok, self.refused = expected, 0, 0
        self.done = asyncio.get_running_loop().create_future()

    def handler(self, client, frame):
        payload = frame.get_payload_as_bytes()
        if b'"event":"reply"' in payload:
            if b'"status":"ok"' in payload:
                self.ok += 1
            else:
                self.refused += 1
            if self.ok + self.refused == self.expected and not self.done.done():
                self.done.set_result(None)


async def one_layout(ctx, kind, cfg, sockets_per_page):
    async with ctx.stack(kind) as stack:
        user_id, token = await asyncio.to_thread(user_and_token, stack)
        headers = {"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, {bearer_offer(token)}"}
        crowd = Crowd(ctx.progress)
        try:
            await asyncio.sleep(1)
            before = await asyncio.to_thread(stack.rss_bytes)
            pages, count = cfg["pages"], cfg["pages"] * sockets_per_page
            joins = Joins(pages * 3)
            started = now()
            clients = await crowd.connect(stack.urls("/socket/"), count, welcome=False, headers=headers,
                                          deadline=connect_deadline(count), what="opening sockets")
            if len(clients) < count:
                return {"error": f"only {len(clients)} of {count} sockets opened", **crowd.health()}
            for index, client in enumerate(clients):
                client.handler = joins.handler
                # One socket: all three topics; three sockets: one topic each.
                mine = topics(user_id) if sockets_per_page == 1 else [topics(user_id)[index % 3]]
                for ref, topic in enumerate(mine):
                    client.send(json.dumps({"topic": topic, "event": "join", "ref": str(ref)}).encode())
            ctx.progress.phase("joining")
            await asyncio.wait_for(joins.done, ctx.late_after + count / 100)
            joined = now()
            await asyncio.sleep(SETTLE)
            after = await asyncio.to_thread(stack.rss_bytes)
            return {"pages": pages, "sockets": len(clients), "joins": joins.ok, "refused_joins": joins.refused,
                    "join_s": round(joined - started, 3), "joins_per_s": joins.ok / (joined - started),
                    "kb_per_page": (after - before) / pages / 1024, **crowd.health()}
        finally:
            crowd.close_all()


async def page(ctx, kind, cfg):
    results = {layout: await one_layout(ctx, kind, cfg, sockets) for layout, sockets in LAYOUTS.items()}
    one, three = (results[layout].get("kb_per_page") for layout in LAYOUTS)
    return {**results, "memory_ratio": one / three if one and three else None}
