"""The `abuse` scenario: one address posts flat out on many sockets; do the members of another room notice?

`subscribers` members of one room get `rate` probes a second, first as is, then while `abusers`
sockets of ONE address each post `abuser_rate` messages a second into another room (the issue's
100 sockets at the per-socket limit: 5,000 messages/s). The worker runs with its default limits and
budgets, behind a proxy (WEBSOCKET_BEHIND_PROXY): the load generator says who each client is in
X-Forwarded-For, as nginx would, so the probes' publishers are guests with an address each and
the abuser is one. Measured: the members' fan-out latency without and with the abuser, what the
abuser got stored against what its address's budget allows, and the database connections the
worker held meanwhile.
"""

import asyncio
import json

from realtime import conf

from .config import ABUSE_ROOM
from .loadgen import Crowd, ignore, now
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

            abusers = await crowd.connect(stack.urls(f"/chat/{ABUSE_ROOM}/"), cfg["abusers"], welcome=True,
                                          deadline=connect_deadline(cfg["abusers"]), what="abusers joining",
                                          headers=lambda i: {"X-Forwarded-For": ABUSER})
            if not abusers:
                return {"error": "the abuser could not connect", **crowd.health()}
            phase[0] = "with"
            state = {"running": True, "sent": 0, "refused": 0}
            for client in abusers:
                client.handler = lambda client, frame: count_refusal(frame, state)
            started = now()
            flooding = asyncio.get_running_loop().create_task(post_flat_out(abusers, cfg["abuser_rate"], state))
            await asyncio.sleep(1)  # under way before the measurement starts
            with_abuse = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"],
                                               first_seq=without["published"])
            state["running"] = False
            await flooding
            for client in abusers:
                client.handler = ignore
            # Most of what it sent still waits unread (its sockets read a message a second once
            # refused): what is stored now is within what its address could spend until now.
            stored = await asyncio.to_thread(stack.stored_messages, ABUSE_ROOM)
            rate, burst = (conf.DEFAULTS[name] for name in ("CHAT_GUEST_POST_RATE", "CHAT_GUEST_POST_BURST"))
            budget = int(burst + rate * (now() - started))
            return {"subscribers": len(subs), "rate": cfg["rate"], "without": without, "with": with_abuse,
                    "abuser": {"sockets": len(abusers), "sent": state["sent"], "refused": state["refused"],
                               "stored": stored, "budget": budget, "seconds": round(now() - started, 2)},
                    "database_connections": dict(connections), **crowd.health()}
        finally:
            sampling.cancel()
            crowd.close_all()


async def post_flat_out(abusers, rate, state):
    """Every abuser socket posts `rate` messages a second (the per-socket limit) until stopped."""
    next_at = now()
    while state["running"]:
        for client in abusers:
            client.send(json.dumps({"event": "message", "data": {"text": f"abuse {state['sent']}"}}).encode())
            state["sent"] += 1
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - now()))


def count_refusal(frame, state):
    if b'"rate_limited"' in frame.get_payload_as_bytes():
        state["refused"] += 1


async def sample_connections(stack, peaks, phase):
    """The most database connections the worker held at once, per phase, sampled every 0.1 s."""
    while True:
        held = await asyncio.to_thread(stack.database_connections)
        peaks[phase[0]] = max(peaks[phase[0]], held)
        await asyncio.sleep(0.1)
