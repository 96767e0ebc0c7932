"""Background loops that must not die quietly: ONE supervisor per worker process.

Each long-lived greenlet of the process (the broker listener, the connection sweeper, the presence
refresher, the jobs watcher, the clock ticker) is started with `supervisor.spawn(name, function)`.
When the function raises, the exception and its traceback are logged, the loop is `restarting`,
and the function is called again after a backoff that doubles from RESTART_MIN up to RESTART_MAX
(back to RESTART_MIN once a run lasted RESTART_MAX without failing): a loop that fails at once
every time costs a log line per RESTART_MAX, not a busy CPU. `/healthz` calls the worker degraded
while any loop is restarting or dead, and `/metrics` counts restarts per loop.

A loop keeps what it must across restarts in its own object (the broker remembers its channels
and that it was connected before); the supervisor keeps only the loop's state and counts.

One-off background work (a room's catch-up after a broker blip, the jobs' replay) is started with
`supervisor.run_task(name, function)`: not restarted (each ends by telling its clients what they
must do, e.g. `resync`), but logged if it fails, and counted under `tasks` in `/healthz` while it
runs, so an operator sees a catch-up that takes long.
"""

import logging
import time
from collections import Counter

import gevent

log = logging.getLogger("realtime.supervisor")

RESTART_MIN, RESTART_MAX = 1.0, 30.0

RUNNING, RESTARTING, STOPPED, DEAD = "running", "restarting", "stopped", "dead"


class Loop:
    """One supervised loop: its greenlet, state, restart count and last error."""

    def __init__(self, name, function, args, restart_min, restart_max):
        self.name, self.function, self.args = name, function, args
        self.restart_min, self.restart_max = restart_min, restart_max
        self.state = RUNNING
        self.restarts = 0
        self.last_error = None
        self.delay = restart_min  # the wait before the next restart
        self.greenlet = gevent.spawn(self._supervise)

    @property
    def healthy(self):
        """Running, or ended on purpose (its function returned, or stop())."""
        return self.state in (RUNNING, STOPPED)

    def stop(self):
        """The way out: end the loop for good (it is then `stopped`, not `dead`)."""
        self.state = STOPPED
        self.greenlet.kill()

    def report(self):
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}

    def _supervise(self):
        try:
            while True:
                started = time.monotonic()
                self.state = RUNNING
                try:
                    self.function(*self.args)
                except Exception as error:
                    self._failed(error, time.monotonic() - started)
                    gevent.sleep(self.delay)
                    self.delay = min(self.delay * 2, self.restart_max)
                else:
                    self.state = STOPPED
                    return
        finally:
            if self.state != STOPPED:  # killed from outside, or a BaseException such as SystemExit
                self.state = DEAD
                log.error("background loop %s is dead", self.name)

    def _failed(self, error, ran_for):
        if ran_for >= self.restart_max:
            self.delay = self.restart_min  # it had been fine for a while: not a crash loop
        self.restarts += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self.state = RESTARTING
        log.exception("background loop %s failed; restart %d in %.1f s", self.name, self.restarts, self.delay)


class Supervisor:
    def __init__(self):
        self.loops = {}  # name -> the Loop started last under that name
        self.tasks = Counter()  # name -> how many one-off tasks of that name run now

    def spawn(self, name, function, *args, restart_min=RESTART_MIN, restart_max=RESTART_MAX):
        """Run `function(*args)` in a supervised greenlet named `name`; returns its Loop."""
        loop = self.loops[name] = Loop(name, function, args, restart_min, restart_max)
        return loop

    def run_task(self, name, function, *args):
        """Run `function(*args)` once in a greenlet of its own; returns the greenlet."""
        self.tasks[name] += 1
        return gevent.spawn(self._run_task, name, function, args)

    def _run_task(self, name, function, args):
        try:
            function(*args)
        except Exception:
            log.exception("background task %s failed", name)
        finally:
            self.tasks[name] -= 1
            if not self.tasks[name]:
                del self.tasks[name]

    @property
    def healthy(self):
        return all(loop.healthy for loop in list(self.loops.values()))

    def report(self):
        """name -> {"state", "restarts", "last_error"}, for /healthz."""
        return {name: loop.report() for name, loop in sorted(self.loops.items())}


supervisor = Supervisor()
