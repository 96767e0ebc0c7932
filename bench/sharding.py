"""Fan-out through a Redis Cluster of three shards beside one Redis (issue 12).

Two workers, many rooms, messages at `rate`/s spread evenly over the rooms, first through one
Redis, then through a 3-shard cluster (sharded PubSub). On a 2-CPU machine the workers, not
Redis, limit deliveries/s, so what is reported is what does not need more cores: Redis CPU per
delivery (all redis-server processes, replicas included) and the share of the publishes each
shard took. docs/performance.md turns them into a prediction for 8 and 32 cores.
"""

import asyncio
import collections

from .config import SHARDING_ROOMS
from .loadgen import Crowd, Deliveries, ignore, now, probe_message
from .scenarios import Window, connect_deadline
from .stats import summarize_latencies

IDLE_SECONDS = 2.0


async def sharding(ctx, kind, cfg):
    runs = {}
    for broker in ("redis", "cluster"):
        async with ctx.stack(kind, workers=2, broker=broker) as stack:
            runs[broker] = await many_rooms(ctx, stack, cfg, broker)
    return {"one_redis": runs["redis"], "cluster": runs["cluster"]}


async def many_rooms(ctx, stack, cfg, label):
    crowd = Crowd(ctx.progress)
    try:
        rooms = []  # (subscribers, publisher, deliveries) per room
        for name in SHARDING_ROOMS[:cfg["rooms"]]:
            urls = stack.urls(f"/chat/{name}/")
            subs = await crowd.connect(urls, cfg["subscribers"], welcome=True,
                                       deadline=connect_deadline(cfg["subscribers"]), what=f"{label}: joining {name}")
            publisher = await crowd.connect(urls[:1], 1, welcome=True, deadline=connect_deadline(1))
            if not subs or not publisher:
                return {"error": f"could not join {name}", **crowd.health()}
            deliveries = Deliveries(len(subs))
            for client in subs:
                client.handler = deliveries.handler
            rooms.append((subs, publisher[0], deliveries))
        await crowd.wait_quiet(limit=ctx.settle_limit)  # the joins' presence traffic is over
        # What Redis spends with no traffic (replication pings, the cluster's gossip): not the fan-out's.
        ctx.progress.phase(f"{label}: Redis at rest")
        at_rest, rest_started = stack.redis_counters(), now()
        await asyncio.sleep(IDLE_SECONDS)
        counts_before, idle_seconds = stack.redis_counters(), now() - rest_started

        total = int(cfg["rate"] * cfg["seconds"])
        window = Window(stack).start()
        start = now()
        for seq in range(total):
            delay = start + seq / cfg["rate"] - now()
            if delay > 0:
                await asyncio.sleep(delay)
            _subs, publisher, deliveries = rooms[seq % len(rooms)]
            deliveries.published(seq)
            publisher.send(probe_message(seq))
            if seq % cfg["rate"] == 0:
                ctx.progress.phase(f"{label}: publishing {seq}/{total}")
        last_publish = now()
        expected = sum(d.expected for _, _, d in rooms)
        while sum(d.received for _, _, d in rooms) < expected and now() - last_publish < ctx.late_after:
            await asyncio.sleep(0.1)
        window.stop()
        counts_after = stack.redis_counters()
        for subs, _, deliveries in rooms:
            deliveries.recording = False
            for client in subs:
                client.handler = ignore
        latencies = [value for _, _, d in rooms for value in d.latencies]
        delivered = len(latencies)
        cpu = {}  # port -> (role, CPU seconds the traffic cost, beyond the same time at rest)
        publishes = {}
        commands = collections.Counter()  # on the primaries
        for port, (role, seconds, calls, every) in counts_after.items():
            _, before, calls_before, every_before = counts_before[port]
            rest_rate = (before - at_rest[port][1]) / idle_seconds
            cpu[port] = (role, max(0.0, seconds - before - rest_rate * window.seconds))
            if role == "master":
                publishes[port] = calls - calls_before
                commands.update({name: n - every_before.get(name, 0) for name, n in every.items()})
        all_publishes = sum(publishes.values()) or 1
        primaries_cpu = sum(seconds for role, seconds in cpu.values() if role == "master")
        replicas_cpu = sum(seconds for role, seconds in cpu.values() if role != "master")
        return {"rooms": len(rooms), "subscribers_per_room": cfg["subscribers"], "rate": cfg["rate"],
                "published": total, **summarize_latencies(latencies, expected, ctx.late_after),
                "deliveries_per_s": delivered / window.seconds,
                "redis_cpu_us_per_delivery": 1e6 * (primaries_cpu + replicas_cpu) / delivered if delivered else None,
                "primaries_cpu_us_per_publish": 1e6 * primaries_cpu / total,
                "replicas_cpu_us_per_publish": 1e6 * replicas_cpu / total,
                "commands_per_publish": {name: round(n / total, 2) for name, n in commands.most_common()
                                         if n / total >= 0.01 and name != "info"},
                "publish_share_per_shard": {str(port): round(n / all_publishes, 3) for port, n in sorted(publishes.items())},
                "cpu_share_per_shard": {str(port): round(seconds / (primaries_cpu or 1), 3)
                                        for port, (role, seconds) in sorted(cpu.items()) if role == "master"},
                "shards": len(publishes), **window.as_dict(), **crowd.health()}
    finally:
        crowd.close_all()
