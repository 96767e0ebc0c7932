"""The abuse scenario's abuser (bench/abuse.py), in a process of its own with its own event loop.

Its sockets send 5,000 frames a second (100 sockets at 50/s: each one encoded and masked). In the
load generator's process that work shared one loop with the members' receives, and every burst of
it made the members' deliveries look later than the server made them. Here it runs beside them,
on the load generator's CPU at the lowest priority: it takes what the members' loop leaves idle
(most of that core), and the kernel prefers the loop whenever a delivery wakes it. On a
real network the abuser is another machine; the members' loop measures the server alone.

    abuser = Abuser(urls, sockets=100, rate=50, address="198.51.100.7")
    await abuser.connected()   # {"sockets": n, "connect_errors": {...}}: each was welcomed
    abuser.go()                # every socket posts `rate` messages a second ...
    await abuser.stopped()     # ... until stopped: {"sent", "refused", "refused_in_50ms", "cpu", ...}

The process is spawned (not forked from a loop holding a thousand sockets) and talks over a pipe.
"""

import asyncio
import json
import multiprocessing
import os
import time

from .loadgen import Crowd, now
from .stats import most_within

GO, STOP = "go", "stop"


class Abuser:
    def __init__(self, urls, *, sockets, rate, address, connect_seconds):
        context = multiprocessing.get_context("spawn")
        self.pipe, child_end = context.Pipe()
        self.process = context.Process(target=run, args=(child_end, urls, sockets, rate, address, connect_seconds),
                                       name="abuser", daemon=True)
        self.process.start()
        self.timeout = connect_seconds + 30  # the spawn itself (imports) takes a few seconds

    async def connected(self):
        return await asyncio.to_thread(self._receive)

    def go(self):
        self.pipe.send(GO)

    async def stopped(self):
        self.pipe.send(STOP)
        return await asyncio.to_thread(self._receive)

    def _receive(self):
        if not self.pipe.poll(self.timeout):
            raise TimeoutError(f"the abuser's process said nothing for {self.timeout:g} s")
        return self.pipe.recv()

    def close(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


def run(pipe, urls, sockets, rate, address, connect_seconds):
    """The child process."""
    import uvloop

    os.nice(19)  # the lowest: never ahead of the members' loop on their shared core
    uvloop.run(abuse(pipe, urls, sockets, rate, address, connect_seconds))


async def abuse(pipe, urls, sockets, rate, address, connect_seconds):
    crowd = Crowd()
    try:
        clients = await crowd.connect(urls, sockets, welcome=True, deadline=time.monotonic() + connect_seconds,
                                      headers=lambda i: {"X-Forwarded-For": address})
        pipe.send({"sockets": len(clients), "connect_errors": dict(crowd.connect_errors)})
        state = {"running": await asyncio.to_thread(pipe.recv) == GO, "sent": 0, "refused_at": []}
        for client in clients:
            client.handler = lambda client, frame: count_refusal(frame, state)
        stop = asyncio.get_running_loop().create_task(wait_for_stop(pipe, state))
        wall, cpu = now(), time.process_time()
        await post_flat_out(clients, rate, state)
        await stop
        # Its share of a core while posting: outside the load generator's own (loadgen_cpu), it
        # shows in the windows' other_cpu.
        share = (time.process_time() - cpu) / max(now() - wall, 1e-9)
        refused = state["refused_at"]
        # In the first second every socket posts at once and is refused at once; after it, how the
        # worker wakes the refused sockets decides how bunched the refusals come.
        bunched = most_within([moment for moment in refused if moment - wall >= 1.0], 0.05)
        pipe.send({"sent": state["sent"], "refused": len(refused), "refused_in_50ms": bunched,
                   "cpu": round(share, 3), **crowd.health()})
    finally:
        crowd.close_all()


async def wait_for_stop(pipe, state):
    if state["running"]:
        await asyncio.to_thread(pipe.recv)
    state["running"] = False


async def post_flat_out(clients, rate, state):
    """Every socket posts `rate` messages a second (the per-socket limit) until stopped."""
    next_at = now()
    while state["running"]:
        for client in clients:
            client.send(json.dumps({"event": "message", "data": {"text": f"abuse {state['sent']}"}}).encode())
            state["sent"] += 1
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - now()))


def count_refusal(frame, state):
    if b'"rate_limited"' in frame.get_payload_as_bytes():
        state["refused_at"].append(now())

