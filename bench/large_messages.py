"""Large messages must not block the worker: 1 MiB echo time, and ping latency during a 16 MiB echo.

    .venv/bin/python bench/large_messages.py [--rounds 20]

Starts one websocket worker (size limit raised to 32 MiB) on a free port. Measures the round trip
of a 1 MiB text and binary echo, then, while another connection echoes 16 MiB messages, how long a
"ping" → "pong" round trip on a second connection takes. Prints medians and worsts.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DEBUG", "1")


async def echo_times(url, payload, rounds):
    import websockets

    times = []
    async with websockets.connect(url, max_size=None) as ws:
        for _ in range(rounds):
            start = time.perf_counter()
            await ws.send(payload)
            assert len(await ws.recv()) == len(payload)
            times.append((time.perf_counter() - start) * 1000)
    return times


async def ping_during_big_echo(echo_url, ping_url, big, rounds):
    import websockets

    async with websockets.connect(echo_url, max_size=None) as big_ws, websockets.connect(ping_url) as ping_ws:
        busy = True

        async def keep_big_busy():
            while busy:
                await big_ws.send(big)
                await big_ws.recv()

        task = asyncio.create_task(keep_big_busy())
        await asyncio.sleep(0.2)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            await ping_ws.send("ping")
            assert await ping_ws.recv() == "pong"
            times.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.02)
        busy = False
        await task
    return times


def summary(name, times):
    return f"{name}: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms ({len(times)} rounds)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    import django

    django.setup()
    from realtime.testing import WorkerProcess

    worker = WorkerProcess(env={"WEBSOCKET_MAX_MESSAGE_SIZE": str(32 * 1024 * 1024), "WS_ACCESS_LOG": "/dev/null",
                                  "WEBSOCKET_RATE_LIMIT": "0", "WEBSOCKET_FRAME_RATE": "0", "WEBSOCKET_MAX_QUEUE_BYTES": str(64 * 1024 * 1024)})
    worker.start()
    try:
        echo = worker.url("/echo/")
        print(summary("1 MiB text echo", asyncio.run(echo_times(echo, "x" * 2**20, args.rounds))))
        print(summary("1 MiB binary echo", asyncio.run(echo_times(echo, b"x" * 2**20, args.rounds))))
        print(summary("ping on another connection during 16 MiB echoes",
                      asyncio.run(ping_during_big_echo(echo, worker.url("/ping/"), b"x" * 2**24, args.rounds))))
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
