"""The `abuse` scenario: one address posts flat out on many sockets; do the members of another room notice?

`subscribers` members of one room get `rate` probes a second, first as is, then while `abusers`
sockets of ONE address each post `abuser_rate` messages a second into another room (the issue's
100 sockets at the per-socket limit: 5,000 messages/s). The worker runs with its default limits and
budgets, behind a proxy (WEBSOCKET_BEHIND_PROXY): the load generator says who each client is in
X-Forwarded-For, as nginx would, so the probes' publishers are guests with an address each and
the abuser is one. The abuser runs in a process of its own (bench/abuser.py): this one's loop
only receives the members' deliveries. Measured: the members' fan-out latency without and with
the abuser, what the abuser got stored against what its address's budget allows, and the
database connections the worker held meanwhile.
"""

import asyncio
import time

from realtime import conf

from .abuser import Abuser
from .config import ABUSE_ROOM
from .loadgen import Crowd, now
from .scenarios import CHAT, connect_deadline, publish_at_rate, warm_up

ABUSER = "198.51.100.7"  # one address (documentation ranges, RFC 5737)
# The probes' publishers post rate / (2 x rate) = 0.5 messages/s each: within a guest's budget.
PUBLISHERS_PER_PROBE_PER_SECOND = 2


def address(i):
    """A guest address of its own for the i-th member or publisher."""
    return f"203.0.{113 + i // 250}.{i % 250 + 1}"


async def abuse(ctx, kind, cfg):
    async with ctx.stack(kind, default_limits=True, env={"WEBSOCKET_BEHIND_PROXY": "1"}) as stack:
        crowd = Crowd(ctx.progress)
        connections = {"without": 0, "with": 0}
        phase = ["without"]
        sampling = asyncio.get_running_loop().create_task(sample_connections(stack, connections, phase))
        try:
            urls = stack.urls(CHAT)
            subs = await crowd.connect(urls, cfg["subscribers"], welcome=True, what="members joining",
                                       deadline=connect_deadline(cfg["subscribers"]),
                                       headers=lambda i: {"X-Forwarded-For": address(i)})
            count = PUBLISHERS_PER_PROBE_PER_SECOND * cfg["rate"]
            publishers = await crowd.connect(urls, count, welcome=True, deadline=connect_deadline(count),
                                             what="publishers joining",
                                             headers=lambda i: {"X-Forwarded-For": address(cfg["subscribers"] + i)})
            if not subs or not publishers:
                return {"error": "could not join the room", **crowd.health()}
            await warm_up(ctx, subs, publishers, cfg["rate"])
            without = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"])

            ctx.progress.phase("abusers joining")
            abuser = Abuser(stack.urls(f"/chat/{ABUSE_ROOM}/"), sockets=cfg["abusers"], rate=cfg["abuser_rate"],
                            address=ABUSER, connect_seconds=connect_deadline(cfg["abusers"]) - time.monotonic())
            try:
                joined = await abuser.connected()
                if not joined["sockets"]:
                    return {"error": "the abuser could not connect", "abuser": joined, **crowd.health()}
                phase[0] = "with"
                started = now()
                abuser.go()
                await asyncio.sleep(1)  # under way before the measurement starts
                with_abuse = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"],
                                                   first_seq=without["published"])
                posted = await abuser.stopped()
            finally:
                abuser.close()
            # Most of what it sent still waits unread (its sockets read about a message a second once
            # refused): what is stored now is within what its address could spend until now.
            stored = await asyncio.to_thread(stack.stored_messages, ABUSE_ROOM)
            rate, burst = (conf.DEFAULTS[name] for name in ("CHAT_GUEST_POST_RATE", "CHAT_GUEST_POST_BURST"))
            budget = int(burst + rate * (now() - started))
            return {"subscribers": len(subs), "rate": cfg["rate"], "without": without, "with": with_abuse,
                    "abuser": {**joined, **posted, "stored": stored, "budget": budget,
                               "seconds": round(now() - started, 2)},
                    "database_connections": dict(connections), **crowd.health()}
        finally:
            sampling.cancel()
            crowd.close_all()


async def sample_connections(stack, peaks, phase):
    """The most database connections the worker held at once, per phase. Every 0.5 s: a sample
    reads all of the worker's 1,100 descriptors (psutil, in a thread of this process); every 0.1 s
    that was a fifth of this process's profile, beside the members' loop, in both phases."""
    while True:
        held = await asyncio.to_thread(stack.database_connections)
        peaks[phase[0]] = max(peaks[phase[0]], held)
        await asyncio.sleep(0.5)
