"""gunicorn config for `bench.memory`: deploy/gunicorn_ws.py plus a memory probe in the worker.

Not for production. On SIGUSR2 the worker writes, into $MEMORY_PROBE_DIR:
  <n>.json    its live greenlets: saved C stack (bytes), Python frames and their data-stack size
  <n>.pickle  a tracemalloc snapshot, when $MEMORY_PROBE_TRACE=objects (tracing starts once the
              worker has booted, so everything a connection allocates afterwards is seen)
With $MEMORY_PROBE_TRACE=depth a profile hook records each greenlet's deepest interpreter data
stack instead (the pages its frames ever reached stay resident, not only those it is parked in;
the hook makes frame objects, so it runs in a worker of its own).
and then renames <n>.json into place last, so the reader sees complete files only.
"""

import gc
import inspect
import json
import os
import runpy
import signal
import sys
from pathlib import Path

globals().update({key: value for key, value in runpy.run_path(
    str(Path(__file__).resolve().parent.parent / "deploy" / "gunicorn_ws.py")).items() if not key.startswith("__")})

TRACE_FRAMES = 12
POINTER = 8
# CPython 3.11's _PyInterpreterFrame before its locals and value stack (FRAME_SPECIALS_SIZE).
FRAME_HEADER_WORDS = 9


def frame_bytes(frame):
    """What one frame takes on the interpreter's data stack (CPython 3.11 layout)."""
    code = frame.f_code
    slots = len(code.co_varnames) + len(code.co_cellvars) + len(code.co_freevars) + code.co_stacksize
    return (FRAME_HEADER_WORDS + slots) * POINTER


GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
deepest = {}  # id(greenlet) -> [data stack bytes now, the most they ever were]


def track_depth(frame, event, arg):
    """sys.setprofile hook: the data stack each greenlet's frames take, now and at most.

    Generator and coroutine frames live in their objects, not on the data stack.
    """
    if event not in ("call", "return") or frame.f_code.co_flags & GENERATOR_FLAGS:
        return
    import greenlet

    depth = deepest.setdefault(id(greenlet.getcurrent()), [0, 0])
    if event == "call":
        depth[0] += frame_bytes(frame)
        depth[1] = max(depth[1], depth[0])
    else:
        depth[0] -= frame_bytes(frame)


def greenlet_report():
    import greenlet

    found = []
    for obj in gc.get_objects():
        if not isinstance(obj, greenlet.greenlet) or obj.dead or obj.gr_frame is None:
            continue
        frames, frame = [], obj.gr_frame
        while frame is not None:
            frames.append((f"{frame.f_code.co_filename}:{frame.f_code.co_name}", frame_bytes(frame)))
            frame = frame.f_back
        found.append({"stack_saved": obj._stack_saved, "frames": frames[::-1],
                      "deepest": deepest.get(id(obj), [0, None])[1]})
    return found


def write_probe(directory, number):
    import tracemalloc

    directory = Path(directory)
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        snapshot.dump(str(directory / f"{number}.pickle"))
    report = {"greenlets": greenlet_report()}
    partial = directory / f"{number}.json.tmp"
    partial.write_text(json.dumps(report))
    partial.rename(directory / f"{number}.json")


def post_worker_init(worker):
    import gevent
    import tracemalloc

    directory = os.environ["MEMORY_PROBE_DIR"]
    trace = os.environ.get("MEMORY_PROBE_TRACE")
    if trace == "objects":
        tracemalloc.start(TRACE_FRAMES)
    elif trace == "depth":
        sys.setprofile(track_depth)
    count = [0]

    def probe():
        count[0] += 1
        write_probe(directory, count[0])

    # gunicorn's worker leaves SIGUSR2 at its default (exit); the hub runs this between callbacks.
    gevent.signal_handler(signal.SIGUSR2, probe)
