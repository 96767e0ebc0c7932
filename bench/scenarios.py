"""The benchmark scenarios (docs/performance.md). Each starts its own stack (`ctx.stack`), measures, and returns a dict.

`ctx` (bench.run.Context) gives the progress line, the stacks and `late_after`.
"""

import asyncio
import contextlib
import time

import psutil

from .config import ROOM
from .flood import flood
from .loadgen import Crowd, Deliveries, ignore, now, probe_message
from .stats import cpu_share, summarize_latencies

CHAT = f"/chat/{ROOM}/"
ECHO = "/echo/"
# Probes are sent round-robin from a few connections, as several people would type.
PUBLISHERS = 5
STALL_AFTER = 5.0  # seconds without progress that end a closed-loop measurement
WARM_UP_SEQ = 10**9  # warm-up probes are numbered from here: no measurement knows them
WARM_UP_PROBES = 10


class Window:
    """CPU shares over a measured window: the load generator (this process), the servers, Redis,
    and everything else on the machine (other work there makes the numbers noisy)."""

    def __init__(self, stack):
        self.stack = stack

    def start(self):
        self.wall0, self.cpu0 = now(), time.process_time()
        self.server0, self.redis0, self.machine0 = self.stack.cpu_seconds(), self.stack.redis_cpu_seconds(), busy_cpu()
        return self

    def stop(self):
        self.seconds = now() - self.wall0
        self.loadgen_cpu = cpu_share(time.process_time() - self.cpu0, self.seconds)
        self.server_cpu = cpu_share(self.stack.cpu_seconds() - self.server0, self.seconds)
        self.redis_cpu = cpu_share(self.stack.redis_cpu_seconds() - self.redis0, self.seconds)
        machine = cpu_share(busy_cpu() - self.machine0, self.seconds)
        self.other_cpu = max(0.0, machine - self.loadgen_cpu - self.server_cpu - self.redis_cpu)
        return self

    def as_dict(self):
        return {"window_s": round(self.seconds, 3), "loadgen_cpu": round(self.loadgen_cpu, 3),
                "server_cpu": round(self.server_cpu, 3), "redis_cpu": round(self.redis_cpu, 3),
                "other_cpu": round(self.other_cpu, 3)}


def busy_cpu():
    """CPU seconds the whole machine has spent busy (all CPUs)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


async def countdown(ctx, seconds, label):
    """Sleep `seconds`, showing how much of it is done."""
    end = now() + seconds
    while (left := end - now()) > 0:
        ctx.progress.phase(f"{label} {seconds - left:.0f}/{seconds:g} s")
        await asyncio.sleep(min(0.5, left))


def connect_deadline(count):
    """Generous but bounded: thousands of handshakes and subscriptions take a while."""
    return time.monotonic() + 30 + count / 40


# --- echo ---------------------------------------------------------------------------------


async def echo(ctx, kind, cfg):
    """`connections` clients each keep one message of `size` bytes going back and forth."""
    async with ctx.stack(kind) as stack:
        crowd = Crowd(ctx.progress)
        try:
            clients = await crowd.connect(stack.urls(ECHO), cfg["connections"], welcome=False,
                                          deadline=connect_deadline(cfg["connections"]))
            if not clients:
                return {"error": "no connection", **crowd.health()}
            binary = cfg["size"] > 1024  # small messages as text, large ones as binary
            payload = b"x" * cfg["size"]
            state = {"running": True}

            def bounce(client, frame):
                if state["running"]:
                    client.send(payload, binary)

            for client in clients:
                client.handler = bounce
                client.send(payload, binary)
            await countdown(ctx, cfg["warmup"], "warming up")
            before, window = crowd.messages, Window(stack).start()
            await countdown(ctx, cfg["seconds"], "measuring")
            count = crowd.messages - before
            window.stop()
            state["running"] = False
            return {"connections": len(clients), "size": cfg["size"], "messages": count,
                    "msgs_per_s": count / window.seconds, **window.as_dict(), **crowd.health()}
        finally:
            crowd.close_all()


# --- fan-out ------------------------------------------------------------------------------


async def join_room(ctx, stack, crowd, subscribers):
    """Subscribers (spread over the stack's servers) and publishers, all welcomed. No settle wait:
    what the joins cost the server afterwards (presence) is part of what is measured."""
    urls = stack.urls(CHAT)
    subs = await crowd.connect(urls, subscribers, welcome=True, deadline=connect_deadline(subscribers),
                               what="subscribing")
    publishers = await crowd.connect(urls[:1], PUBLISHERS, welcome=True, deadline=connect_deadline(PUBLISHERS),
                                     what="publishers joining")
    return subs, publishers


async def warm_up(ctx, subs, publishers, rate):
    """A few probes nobody measures, so that first-use costs (database connections, lazy imports,
    buffers) are paid before the measurement; returns once every copy arrived (or at the limit)."""
    ctx.progress.phase("warming up")
    deliveries = Deliveries(len(subs))
    for client in subs:
        client.handler = deliveries.handler
    for i in range(WARM_UP_PROBES):
        deliveries.published(WARM_UP_SEQ + i)
        publishers[i % len(publishers)].send(probe_message(WARM_UP_SEQ + i))
        await asyncio.sleep(1 / rate)
    deadline = now() + ctx.settle_limit
    while deliveries.received < deliveries.expected and now() < deadline:
        await asyncio.sleep(0.1)
    for client in subs:
        client.handler = ignore


async def publish_at_rate(ctx, stack, subs, publishers, rate, seconds, first_seq=0):
    """Publish rate x seconds probes on schedule; measure each delivery until all arrived or the
    last probe is `late_after` old."""
    deliveries = Deliveries(len(subs))
    for client in subs:
        client.handler = deliveries.handler
    total = int(rate * seconds)
    window = Window(stack).start()
    start = now()
    for i in range(total):
        delay = start + i / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = first_seq + i
        deliveries.published(seq)
        publishers[i % len(publishers)].send(probe_message(seq))
        if i % max(1, int(rate)) == 0:
            ctx.progress.phase(f"publishing {i}/{total} at {rate}/s, {deliveries.received:,} delivered")
    last_publish = now()
    while deliveries.received < deliveries.expected and now() - last_publish < ctx.late_after:
        ctx.progress.phase(f"draining: {deliveries.received:,}/{deliveries.expected:,} delivered, "
                           f"{now() - last_publish:.0f}/{ctx.late_after:g} s")
        await asyncio.sleep(0.1)
    window.stop()
    deliveries.recording = False
    for client in subs:
        client.handler = ignore
    summary = summarize_latencies(deliveries.latencies, deliveries.expected, ctx.late_after)
    return {"subscribers": len(subs), "rate": rate, "published": total, **summary,
            "deliveries_per_s": deliveries.received / window.seconds, **window.as_dict()}


@contextlib.asynccontextmanager
async def warm_room(ctx, kind, cfg):
    """(stack, crowd, room) for a started `kind` whose room was joined and warmed up; room is
    (subscribers, publishers), or None if it could not be joined."""
    async with ctx.stack(kind) as stack:
        crowd = Crowd(ctx.progress)
        try:
            subs, publishers = await join_room(ctx, stack, crowd, cfg["subscribers"])
            room = None
            if subs and publishers:
                await warm_up(ctx, subs, publishers, cfg["rate"])
                room = subs, publishers
            yield stack, crowd, room
        finally:
            crowd.close_all()


async def fanout(ctx, kind, cfg):
    """`subscribers` in one room; probes at `rate`/s through the chat path; latency and loss."""
    async with warm_room(ctx, kind, cfg) as (stack, crowd, room):
        if not room:
            return {"error": "could not join the room", **crowd.health()}
        subs, publishers = room
        result = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"])
        return {**result, "wanted_subscribers": cfg["subscribers"], **crowd.health()}


# --- slow consumer ------------------------------------------------------------------------


async def slow_consumer(ctx, kind, cfg):
    """The fan-out run twice on one room: as is, then with one more member that never reads."""
    async with warm_room(ctx, kind, cfg) as (stack, crowd, room):
        if not room:
            return {"error": "could not join the room", **crowd.health()}
        subs, publishers = room
        without = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"])
        ctx.progress.phase("adding a client that never reads")
        slow = await crowd.connect(stack.urls(CHAT), 1, welcome=True, deadline=connect_deadline(1))
        if not slow:
            return {"error": "the slow client could not join", **crowd.health()}
        slow[0].stop_reading()
        await crowd.wait_quiet(limit=ctx.settle_limit)
        first_seq = without["published"]
        with_slow = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"], first_seq)
        # Did the server give up on it (close 1013) or keep queueing? Read what it left us.
        slow[0].handler = ignore
        slow[0].resume_reading()
        await crowd.wait_quiet(quiet=1.0, limit=ctx.settle_limit)
        return {"subscribers": len(subs), "rate": cfg["rate"],
                "without": without, "with": with_slow, "slow_client_close_code": slow[0].close_code,
                "slow_client_disconnected": slow[0].disconnected, **crowd.health()}


# --- idle ---------------------------------------------------------------------------------


async def idle(ctx, kind, cfg):
    """Server RSS growth per open, silent connection."""
    async with ctx.stack(kind) as stack:
        warm = Crowd()
        crowd = Crowd(ctx.progress)
        try:
            # One round trip first, so that lazy imports and first-request setup are not counted.
            ctx.progress.phase("warming up")
            for client in await warm.connect(stack.urls(ECHO), 10, welcome=False, deadline=connect_deadline(10)):
                client.send(b"warm-up")
            await asyncio.sleep(1)
            warm.close_all()
            await asyncio.sleep(1)
            before = stack.rss_bytes()
            clients = await crowd.connect(stack.urls(ECHO), cfg["connections"], welcome=False,
                                          deadline=connect_deadline(cfg["connections"]), what="connecting")
            ctx.progress.phase("holding the connections")
            await asyncio.sleep(2)
            after = stack.rss_bytes()
            if not clients:
                return {"error": "no connection", **crowd.health()}
            return {"connections": len(clients), "rss_before_mb": before / 2**20, "rss_after_mb": after / 2**20,
                    "kb_per_connection": (after - before) / len(clients) / 1024, **crowd.health()}
        finally:
            crowd.close_all()


# --- scaling ------------------------------------------------------------------------------


async def deliveries_per_second(ctx, stack, cfg):
    """Closed-loop fan-out: `in_flight` probes outstanding at any time, the next one published as
    soon as every subscriber has one; measures the deliveries/s the server side sustains."""
    crowd = Crowd(ctx.progress)
    try:
        subs, publishers = await join_room(ctx, stack, crowd, cfg["subscribers"])
        if not subs or not publishers:
            return {"error": "could not join the room", **crowd.health()}
        deliveries = Deliveries(len(subs))
        state = {"next": 0, "running": True, "last_complete": now(), "stalled": False}

        def publish_next(completed_seq=None):
            state["last_complete"] = now()
            if state["running"]:
                seq = state["next"]
                state["next"] += 1
                deliveries.published(seq)
                publishers[seq % len(publishers)].send(probe_message(seq))

        deliveries.on_complete = publish_next
        for client in subs:
            client.handler = deliveries.handler
        for _ in range(cfg["in_flight"]):
            publish_next()

        async def watch(seconds, label):
            # A probe some subscriber never gets stops the loop: notice, and say so.
            end = now() + seconds
            while (left := end - now()) > 0:
                ctx.progress.phase(f"{label} {seconds - left:.0f}/{seconds:g} s, {deliveries.received:,} delivered")
                if now() - state["last_complete"] > STALL_AFTER:
                    state["stalled"] = True
                await asyncio.sleep(min(0.5, left))

        await watch(cfg["warmup"], "warming up")
        before, window = deliveries.received, Window(stack).start()
        await watch(cfg["seconds"], "measuring")
        received = deliveries.received - before
        window.stop()
        state["running"] = False
        return {"subscribers": len(subs), "servers": len(stack.servers),
                "deliveries_per_s": received / window.seconds, "stalled": state["stalled"], **window.as_dict(),
                **crowd.health()}
    finally:
        crowd.close_all()


async def scaling(ctx, kind, cfg):
    """The same closed-loop fan-out on one worker, then on two workers sharing one Redis."""
    runs = {}
    for workers in (1, 2):
        async with ctx.stack(kind, workers=workers) as stack:
            runs[str(workers)] = await deliveries_per_second(ctx, stack, cfg)
    one, two = runs["1"].get("deliveries_per_s"), runs["2"].get("deliveries_per_s")
    return {"one": runs["1"], "two": runs["2"], "ratio": (two / one) if one and two else None,
            "cpus": [list(cpus) for cpus in ctx.cpu_sets(2)]}


# --- crowd ---------------------------------------------------------------------------------


async def crowd(ctx, kind, cfg):
    """`subscribers` join one room as fast as the load generator connects; then the time until one
    message reaches every member; then fan-out at `rate`/s. No settle wait anywhere: each step
    starts the moment the one before it is complete."""
    async with ctx.stack(kind) as stack:
        crowd = Crowd(ctx.progress)
        try:
            count = cfg["subscribers"]
            started = now()
            subs = await crowd.connect(stack.urls(CHAT), count, welcome=True, deadline=connect_deadline(count),
                                       concurrency=cfg["concurrency"], what="joining")
            joined = now()
            # Full garbage collections while the crowd joined (ours: from the worker's /metrics).
            gc_while_joining = await asyncio.to_thread(stack.gc_pauses)
            publishers = await crowd.connect(stack.urls(CHAT)[:1], PUBLISHERS, welcome=True,
                                             deadline=connect_deadline(PUBLISHERS), what="publishers joining")
            if not subs or not publishers:
                return {"error": "could not join the room", **crowd.health()}
            ctx.progress.phase("one message to every member")
            first = Deliveries(len(subs))
            reached = {}
            first.on_complete = lambda seq: reached.setdefault("at", now())
            for client in subs:
                client.handler = first.handler
            first.published(0)
            publishers[0].send(probe_message(0))
            while "at" not in reached and now() - first.sent_at[0] < ctx.late_after:
                await asyncio.sleep(0.01)
            first.recording = False
            fanout = await publish_at_rate(ctx, stack, subs, publishers, cfg["rate"], cfg["seconds"], first_seq=1)
            return {"subscribers": len(subs), "wanted_subscribers": count, "join_s": round(joined - started, 3),
                    "joins_per_s": len(subs) / (joined - started),
                    "one_message_to_all_s": round(reached["at"] - first.sent_at[0], 3) if reached else None,
                    "one_message_received": first.received, "fanout": fanout, "gc_while_joining": gc_while_joining,
                    **crowd.health()}
        finally:
            crowd.close_all()


SCENARIOS = {
    "echo": echo,
    "echo-large": echo,
    "fanout-1": fanout,
    "fanout-2": fanout,
    "idle": idle,
    "slow-consumer": slow_consumer,
    "scaling": scaling,
    "flood": flood,
    "crowd-1": crowd,
    "crowd-2": crowd,
    "crowd-3": crowd,
}


def _sharding(ctx, kind, cfg):  # bench/sharding.py imports this module: imported at call time
    from .sharding import sharding

    return sharding(ctx, kind, cfg)


def _abuse(ctx, kind, cfg):  # likewise bench/abuse.py
    from .abuse import abuse

    return abuse(ctx, kind, cfg)


SCENARIOS["sharding"] = _sharding


def _page(ctx, kind, cfg):  # bench/page.py imports this module: imported at call time
    from .page import page

    return page(ctx, kind, cfg)


SCENARIOS["page"] = _page
SCENARIOS["abuse"] = _abuse


async def _api(ctx, kind, cfg):  # bench/api.py imports this module: imported at call time
    from .api import api

    return await api(ctx, kind, cfg)


SCENARIOS["api"] = _api
