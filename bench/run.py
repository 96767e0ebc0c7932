"""Run the benchmark: every scenario against every server it concerns, in one run.

    .venv/bin/python -m bench.run [--quick] [--servers ours,bare] [--scenarios echo,idle]

Writes bench/results/<date>.json (and the table and plots next to it, via bench.report), then
prints the table and a PASS/MISS line for each target (bench/targets.py). `make bench` is the way in:
it also builds the Channels environment this needs.
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup_django():
    # The harness itself only needs settings (realtime.testing); the servers run DEBUG=0.
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import logging

    logging.getLogger("picows").setLevel(logging.WARNING)  # it logs every connection at INFO


def raise_fd_limit():
    """Thousands of sockets on each side: lift our soft limit to the hard one (servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_plan():
    """Load generator on the last CPU, servers (and Redis) on the first, when there are two or more.

    Two workers get the first two CPUs; on a two-CPU machine the second is the load generator's,
    which the results say.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {"cpus": cpus, "loadgen": None, "server": None, "two_workers": [None, None], "shared": True}
    second = cpus[1] if len(cpus) >= 3 else cpus[-1]
    return {"cpus": cpus, "loadgen": [cpus[-1]], "server": [cpus[0]], "two_workers": [[cpus[0]], [second]],
            "shared": second == cpus[-1]}


def settle_limit(config):
    """The longest wait for setup traffic (warm-up probes) to be delivered."""
    return 60.0 if config["late_after"] >= 30 else 15.0


class Context:
    """What scenarios get: the progress line, stacks to start, and the run's settings."""

    def __init__(self, config, plan, run_dir, templates, progress, profile=False):
        self.config, self.plan, self.run_dir, self.templates = config, plan, run_dir, templates
        self.progress = progress
        self.profile = profile
        self.label = ""  # the current step, for file names
        self.late_after = config["late_after"]
        self.settle_limit = settle_limit(config)

    def cpu_sets(self, workers):
        return [self.plan["server"]] if workers == 1 else self.plan["two_workers"]

    @contextlib.asynccontextmanager
    async def stack(self, kind, workers=1, default_limits=False, broker="redis", env=None):
        from .servers import Stack

        stack = Stack(kind, self.cpu_sets(workers), self.run_dir, self.templates, default_limits, broker, env)
        self.progress.phase(f"starting {kind}" + (f" ({workers} workers)" if workers > 1 else ""))
        await asyncio.to_thread(stack.start)
        profilers = start_profilers(stack, self.run_dir / f"profile-{self.label}-{workers}") if self.profile else []
        try:
            yield stack
            if not stack.alive():
                raise RuntimeError(f"{kind} died during the scenario: {stack.logs_tail()}")
        finally:
            self.progress.phase(f"stopping {kind}")
            await asyncio.to_thread(stack.stop)
            for profiler in profilers:
                await asyncio.to_thread(profiler.wait, 30)


def start_profilers(stack, prefix):
    """py-spy on every server worker process (gunicorn's workers, daphne itself) until it exits:
    collapsed stacks of where CPU time went, in <prefix>-<pid>.txt (`--profile`)."""
    import psutil

    py_spy = Path(sys.executable).with_name("py-spy")
    profilers = []
    for server in stack.servers:
        root = psutil.Process(server.process.pid)
        for process in root.children() or [root]:
            output = f"{prefix}-{process.pid}.txt"
            profilers.append(subprocess.Popen([str(py_spy), "record", "--pid", str(process.pid), "--format", "raw",
                                               "--rate", "250", "--nonblocking", "--output", output],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return profilers


def plan_steps(config, scenarios=None):
    from .config import SCENARIO_SERVERS

    steps = []
    for scenario, wanted in SCENARIO_SERVERS.items():
        if scenarios and scenario not in scenarios:
            continue
        steps += [(scenario, kind) for kind in config["servers"] if wanted == "all" or kind in wanted]
    return steps


def scenario_timeout(config, cfg):
    """An upper bound for one scenario: connecting, measuring, draining, starting and stopping."""
    people = cfg.get("subscribers", cfg.get("connections", 0))
    return 90 + people / 20 + 2 * (
        cfg.get("seconds", 0) + cfg.get("warmup", 0) + config["late_after"] + settle_limit(config))


async def run_all(ctx, steps):
    from .scenarios import SCENARIOS

    results = []
    deadline = time.monotonic() + ctx.config["budget"]
    ctx.progress.start_ticking()
    for scenario, kind in steps:
        ctx.progress.step(f"{scenario} / {kind}")
        ctx.label = f"{scenario}-{kind}"
        cfg = ctx.config[scenario]
        record = {"scenario": scenario, "server": kind, "config": cfg}
        left = deadline - time.monotonic()
        if left < 5:
            results.append({**record, "status": "skipped", "error": "the run's time budget was spent"})
            continue
        started = time.monotonic()
        try:
            outcome = await asyncio.wait_for(SCENARIOS[scenario](ctx, kind, cfg), min(left, scenario_timeout(ctx.config, cfg)))
            status = "error" if "error" in outcome else "ok"
            results.append({**record, "status": status, **outcome})
        except asyncio.TimeoutError:
            results.append({**record, "status": "error", "error": "timed out"})
        except Exception as exc:  # one failing scenario must not lose the others' numbers
            traceback.print_exc()
            results.append({**record, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]})
        results[-1]["took_s"] = round(time.monotonic() - started, 1)
    ctx.progress.done()
    return results


def versions():
    from .servers import CHANNELS_PYTHON

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    channels = CHANNELS_PYTHON.exists() and subprocess.run([str(CHANNELS_PYTHON), "-c", "import importlib.metadata as m; print(' '.join("
                               "f'{p}=={m.version(p)}' for p in ('channels','channels_redis','daphne','Django')))"],
                              capture_output=True, text=True).stdout.strip()
    import gevent
    import picows
    import uvloop

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain")),
            "python": platform.python_version(), "gevent": gevent.__version__, "picows": picows.__version__,
            "uvloop": uvloop.__version__, "channels": channels}


def machine(plan, fd_limit):
    model = ""
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {"cpu_model": model, "cpus": len(plan["cpus"]), "loadgen_cpus": plan["loadgen"],
            "server_cpus": plan["server"], "two_worker_cpus": plan["two_workers"],
            "second_worker_shares_loadgen_cpu": plan["shared"], "fd_limit": fd_limit,
            "load_average_at_start": os.getloadavg()}


def freeze_survivors():
    """The load generator's clients live for a whole scenario: freeze what survives each full
    garbage collection, so that the next does not walk 10,000 clients again (each walk stopped the
    load generator for 50-220 ms while a crowd connected, and counted as the servers' latency).
    Frozen cyclic garbage waits for the process to exit: it lives minutes."""
    import gc

    gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and gc.freeze())


def main(argv=None):
    parser = argparse.ArgumentParser(description="Our websocket worker beside Django Channels, in one run.")
    parser.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes (development)")
    parser.add_argument("--servers", help="comma-separated subset of: ours, bare, channels-core, channels-pubsub")
    parser.add_argument("--scenarios", help="comma-separated subset of the scenarios")
    parser.add_argument("--docs", action="store_true", help="regenerate docs/performance.md (default: full runs only)")
    parser.add_argument("--profile", action="store_true", help="py-spy every server worker; stacks in the log folder")
    args = parser.parse_args(argv)

    setup_django()
    import uvloop

    from . import report
    from .config import FULL, QUICK, SERVERS
    from .progress import Progress
    from .servers import migrate_templates

    config = dict(QUICK if args.quick else FULL)
    if args.servers:
        unknown = set(args.servers.split(",")) - set(SERVERS)
        if unknown:
            parser.error(f"unknown servers {sorted(unknown)}; choose from {sorted(SERVERS)}")
        config["servers"] = args.servers.split(",")
    fd_limit = raise_fd_limit()
    freeze_survivors()
    plan = cpu_plan()
    if plan["loadgen"]:
        os.sched_setaffinity(0, plan["loadgen"])
    steps = plan_steps(config, args.scenarios and args.scenarios.split(","))
    started = datetime.datetime.now()
    # Logs and databases on tmpfs when there is one: disk flushes stay out of the numbers.
    shm = Path("/dev/shm")
    run_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    print(f"benchmark ({'QUICK' if args.quick else 'full'}): {len(steps)} steps, at most {config['budget'] // 60} min; "
          f"load generator on CPU {plan['loadgen']}, servers on {plan['server']}; logs in {run_dir}", flush=True)
    from .config import CHANNELS

    templates = migrate_templates(run_dir, channels_too=any(kind in CHANNELS for _, kind in steps))
    progress = Progress(len(steps))
    ctx = Context(config, plan, run_dir, templates, progress, profile=args.profile)
    results = uvloop.run(run_all(ctx, steps))

    document = {"started": started.isoformat(timespec="seconds"), "quick": args.quick,
                "duration_s": round((datetime.datetime.now() - started).total_seconds(), 1),
                "machine": machine(plan, fd_limit), "versions": versions(), "config": config,
                "logs": str(run_dir), "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y-%m-%d-%H%M%S") + ("-quick" if args.quick else "")
    path = RESULTS / f"{stamp}.json"
    from .stats import json_safe

    path.write_text(json.dumps(json_safe(document), indent=1) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    # docs/performance.md shows complete full runs only (or whatever --docs asks for).
    report.publish(path, docs=args.docs or not (args.quick or args.servers or args.scenarios))
    if args.profile or any(r["status"] != "ok" for r in results):
        print(f"server logs{' and profiles' if args.profile else ''}: {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # on tmpfs: memory
    return 0


if __name__ == "__main__":
    sys.exit(main())
