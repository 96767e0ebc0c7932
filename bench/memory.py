"""Where the memory of an idle WebSocket connection goes, in a real worker.

    .venv/bin/python -m bench.memory                  # 1,000 silent /echo/ connections
    .venv/bin/python -m bench.memory --connections 2000 --top 25

Starts Redis and our worker (deploy/gunicorn_ws.py with `bench/memory_probe.py`'s probe, DEBUG=0)
three times. Each time: a warm-up round trip on 10 connections, a probe, N silent connections
to /echo/ held open, a probe. The first worker runs untraced and gives the resident memory (RSS)
per connection, as the benchmark's `idle` scenario measures it, and the greenlets' saved C stacks.
The second runs under tracemalloc and says which lines allocated the Python objects. The third
records how deep each greenlet's interpreter data stack ever went: CPython 3.11 gives every
greenlet its own 16 KiB chunk, mapped outside the allocators tracemalloc watches and resident
as far as its frames ever reached. The rest is the allocator's own overhead.
"""

import argparse
import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from .run import ROOT, raise_fd_limit, setup_django

PAGE = 4096
CHUNK_HEADER = 24  # CPython 3.11's _PyStackChunk before its frames (previous, size, top)
PROBE_TIMEOUT = 120

# Where an allocation's innermost frame is, as a short name for the breakdown.
AREAS = [("/realtime/", "realtime (ours)"), ("/django_websocket/", "django-gevent-websocket"),
         ("/django/", "Django"), ("/geventwebsocket/", "gevent-websocket"), ("/gunicorn/", "gunicorn"),
         ("/gevent/", "gevent"), ("/websockets/", "websockets"), ("/asgiref/", "asgiref")]


def area_of(filename):
    return next((name for marker, name in AREAS if marker in filename), "stdlib and others")


def short(filename):
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1].lstrip("/").removeprefix("11/")
    return os.path.relpath(filename, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--top", type=int, default=20, help="lines to list under tracemalloc")
    args = parser.parse_args()
    setup_django()
    raise_fd_limit()
    run = Path(tempfile.mkdtemp(prefix="bench-memory-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        database = migrate(run)
        plain = measure(run / "plain", database, args.connections, trace=None)
        traced = measure(run / "traced", database, args.connections, trace="objects")
        depth = measure(run / "depth", database, args.connections, trace="depth")
    except BaseException:
        print(f"failed; the worker logs are in {run}", file=sys.stderr)
        raise
    shutil.rmtree(run)
    print(report(plain, traced, depth, args.connections, args.top))


def migrate(run):
    import subprocess

    from .servers import production_env

    database = run / "memory.sqlite3"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, **production_env(DATABASE_URL=f"sqlite:///{database}")})
    return database


def measure(directory, database, connections, trace):
    import websocket

    from realtime.testing import RedisServer

    from .servers import OurWorker

    class ProbedWorker(OurWorker):
        def __init__(self, *args):
            super().__init__(*args)
            self.options = ["-c", str(ROOT / "bench" / "memory_probe.py"), "--workers", "1"]

    directory.mkdir()
    # No heartbeat pings during the measurement: these clients never answer them. Nothing frozen:
    # the probe finds the greenlets through gc.get_objects(), which skips frozen objects.
    env = {"MEMORY_PROBE_DIR": str(directory), "MEMORY_PROBE_TRACE": trace or "", "WEBSOCKET_PING_INTERVAL": "3600",
           "WEBSOCKET_GC_FREEZE": "0"}
    redis = RedisServer().start()
    worker = ProbedWorker(redis.url, f"sqlite:///{database}", None, directory)
    worker.extra_env.update(env)
    clients = []
    try:
        worker.start()
        url = worker.url("/echo/")
        for _ in range(10):  # lazy imports and first-request setup are not counted
            client = websocket.create_connection(url, timeout=10)
            client.send("warm-up")
            client.recv()
            client.close()
        time.sleep(1)
        pid = worker_pid(worker)
        before = probe(pid, directory, 1)
        for _ in range(connections):
            clients.append(websocket.create_connection(url, timeout=10))
        time.sleep(2)
        after = probe(pid, directory, 2)
        return {"before": before, "after": after}
    finally:
        for client in clients:
            client.close()
        worker.stop()
        redis.stop()


def worker_pid(worker):
    pid = worker.process.pid
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


def rss(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))


def probe(pid, directory, number):
    """RSS first (the probe itself allocates), then the worker's own report."""
    resident = rss(pid)
    os.kill(pid, signal.SIGUSR2)
    path = directory / f"{number}.json"
    deadline = time.monotonic() + PROBE_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker wrote no probe {number} in {PROBE_TIMEOUT} s")
        time.sleep(0.1)
    found = json.loads(path.read_text())
    snapshot = directory / f"{number}.pickle"
    found["rss"] = resident
    found["snapshot"] = tracemalloc.Snapshot.load(str(snapshot)) if snapshot.exists() else None
    return found


def view_greenlets(probe):
    """The greenlets parked in a WebSocket view's read (one per open connection)."""
    waiting = "realtime/transport/connection.py:receive"
    return [g for g in probe["greenlets"] if any(waiting in name for name, _ in g["frames"])]


def pages(used):
    return -(-(CHUNK_HEADER + used) // PAGE) * PAGE


def parked_frames(greenlet):
    return sum(size for _, size in greenlet["frames"])


def without_stack_copies(probe):
    """The probe's snapshot minus greenlet's copies of saved C stacks, and their total.

    greenlet allocates each copy (PyMem) under whatever Python frame switched, exactly the size
    `_stack_saved` reports: traces of those sizes, one per live greenlet, are taken out.
    """
    wanted = collections.Counter(g["stack_saved"] for g in probe["greenlets"] if g["stack_saved"])
    snapshot = probe["snapshot"]
    kept, copies = [], 0
    for trace in snapshot.traces._traces:
        size = trace[1]
        if wanted[size] > 0:
            wanted[size] -= 1
            copies += size
        else:
            kept.append(trace)
    return tracemalloc.Snapshot(kept, snapshot.traceback_limit), copies


def report(plain, traced, depth, connections, top):
    lines = []
    kb = lambda n: f"{n / connections / 1024:5.1f}"  # noqa: E731 (per connection, in KB)
    rss_growth = plain["after"]["rss"] - plain["before"]["rss"]
    parked = view_greenlets(plain["after"])
    if len(parked) != connections:
        lines.append(f"warning: {len(parked)} view greenlets found for {connections} connections")
    stacks = sum(g["stack_saved"] for g in parked)
    # Resident: every page the greenlet's frames ever reached (the third run's profile hook).
    deepest = [g["deepest"] for g in view_greenlets(depth["after"])]
    data_stack = sum(pages(d) for d in deepest) * len(parked) // max(1, len(deepest))
    before, copies_before = without_stack_copies(traced["before"])
    after, copies_after = without_stack_copies(traced["after"])
    areas = collections.Counter()
    for stat in after.compare_to(before, "filename"):
        areas[area_of(stat.traceback[0].filename)] += stat.size_diff
    objects = sum(areas.values())
    lines.append(f"{connections} idle /echo/ connections on one worker; KB per connection:\n")
    lines.append(f"  {kb(rss_growth)}  resident memory (RSS) growth of the worker, untraced run; of which")
    lines.append(f"  {kb(stacks)}    saved C stacks of the parked view greenlets (greenlet's heap copy)")
    lines.append(f"  {kb(data_stack)}    interpreter data stack of the parked greenlets "
                 "(the pages their frames ever reached)")
    lines.append(f"  {kb(objects)}    Python objects and buffers (tracemalloc, traced run), allocated in:")
    for name, size in areas.most_common():
        if abs(size) >= connections * 50:
            lines.append(f"  {kb(size)}      {name}")
    rest = rss_growth - stacks - data_stack - objects
    lines.append(f"  {kb(rest)}    the rest: allocator overhead and fragmentation")
    # A cross-check: the copies the traced run found by size, against the untraced run's count.
    lines.append(f"  (traced run: stack copies {kb(copies_after - copies_before).strip()} KB)")
    frames = [len(g["frames"]) for g in parked]
    if parked:
        example = parked[0]
        lines.append(f"\nA parked view greenlet: {min(frames)}-{max(frames)} Python frames, "
                     f"{stacks / len(parked):.0f} B of saved C stack, {parked_frames(example)} B of frames on its "
                     f"data stack now, {max(deepest, default=0)} B at the deepest call during its request:")
        for name, size in example["frames"]:
            path, function = name.rsplit(":", 1)
            lines.append(f"  {size:>5} B  {short(path)}:{function}")
    lines.append(f"\nTop {top} allocating lines (innermost frame), bytes and blocks per connection:")
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(f"  {stat.size_diff / connections:>7.0f}  {stat.count_diff / connections:>5.1f}  "
                     f"{short(frame.filename)}:{frame.lineno}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
