"""Latency of one chat message to N clients spread over two workers sharing one Redis.

    .venv/bin/python bench/chat_latency.py [--clients 200] [--messages 20]

Starts its own redis-server and two websocket workers on free loopback ports with a fresh SQLite
database, connects the clients (asyncio `websockets`), then sends messages one at a time through
the real chat path (form validation, database write, Redis PubSub) and measures, for every client,
the time from send to delivery. Prints the median and the worst over all deliveries.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DEBUG", "1")


async def run(urls, clients, messages):
    import websockets

    async def join(url):
        ws = await websockets.connect(url, max_size=None)
        while json.loads(await ws.recv())["event"] != "welcome":
            pass
        return ws

    sockets = await asyncio.gather(*(join(urls[i % len(urls)]) for i in range(clients)))
    sender = await join(urls[0])

    async def wait_for(ws, text):
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == "message" and message["data"]["text"] == text:
                return time.perf_counter()

    latencies = []
    # Probe -1 is not counted: it queues behind the join notices and member lists of the 200
    # joins still being read (the first probe waited ~400 ms for them).
    for n in range(-1, messages):
        text = f"latency probe {n}"
        waiters = [asyncio.create_task(wait_for(ws, text)) for ws in sockets]
        start = time.perf_counter()
        await sender.send(json.dumps({"event": "message", "data": {"text": text}}))
        arrivals = await asyncio.wait_for(asyncio.gather(*waiters), 30)
        if n >= 0:
            latencies.extend((t - start) * 1000 for t in arrivals)
    for ws in sockets + [sender]:
        await ws.close()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()

    database = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    from chat.models import Room
    from realtime.testing import RedisServer, WorkerProcess

    Room.objects.get_or_create(name="bench")  # anonymous clients join only rooms that exist

    redis = RedisServer().start()
    # One guest sends every message: its address's posting budget (10 at once) would refuse the rest;
    # every client is 127.0.0.1, and a crowd above 300 would pass the address's join burst.
    no_budgets = {"CHAT_GUEST_POST_RATE": "0", "WEBSOCKET_GUEST_JOIN_RATE": "0"}
    workers = [WorkerProcess(redis_url=redis.url, env={"WS_ACCESS_LOG": "/dev/null", **no_budgets})
               for _ in range(2)]
    try:
        for worker in workers:
            worker.start()
        urls = [worker.url("/chat/bench/") for worker in workers]
        latencies = asyncio.run(run(urls, args.clients, args.messages))
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()
    print(f"{args.clients} clients on 2 workers, {args.messages} messages, {len(latencies)} deliveries: "
          f"median {statistics.median(latencies):.1f} ms, worst {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
