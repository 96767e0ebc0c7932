"""Background loops (broker listener, connection sweeper, presence refresher, jobs watcher, clock)
run under realtime.supervisor: an unexpected exception is logged, the loop restarts with backoff,
and /healthz and /metrics tell the operator meanwhile."""

import json
import struct

import gevent
import gevent.event
import redis
from django.test import SimpleTestCase

from realtime.server.connections import SWEEP_BATCH, OpenConnections
from realtime.supervisor import DEAD, RESTARTING, RUNNING, STOPPED, Supervisor
from realtime.testing import LiveWebSocketTestCase, wait_until
from tests.raw import RawClient


class SupervisorTests(SimpleTestCase):
    """Real greenlets in this process (gevent runs them whenever the test waits with gevent.sleep)."""

    def setUp(self):
        self.supervisor = Supervisor()
        self.addCleanup(lambda: [loop.stop() for loop in self.supervisor.loops.values()])

    def wait_for(self, predicate, message):
        for _ in range(500):
            if predicate():
                return
            gevent.sleep(0.01)
        self.fail(f"waited 5 s for {message}")

    def test_a_loop_that_raises_is_logged_restarted_and_runs_again(self):
        runs = []

        def work():
            runs.append(len(runs))
            if len(runs) <= 2:
                raise ValueError(f"bad input {len(runs)}")
            gevent.sleep(60)  # then it keeps running

        with self.assertLogs("realtime.supervisor", "ERROR") as logs:
            loop = self.supervisor.spawn("worker", work, restart_min=0.01, restart_max=1)
            self.wait_for(lambda: len(runs) == 3 and loop.state == RUNNING, "the third run")
        self.assertEqual((loop.restarts, loop.last_error), (2, "ValueError: bad input 2"))
        self.assertIn("background loop worker failed; restart 1 in 0.0 s", logs.output[0])
        self.assertIn("ValueError: bad input 1", logs.output[0])  # with its traceback
        self.assertTrue(self.supervisor.healthy)
        self.assertEqual(self.supervisor.report(), {"worker": {"state": "running", "restarts": 2,
                                                               "last_error": "ValueError: bad input 2"}})

    def test_while_it_waits_to_restart_it_is_restarting_and_the_process_unhealthy(self):
        with self.assertLogs("realtime.supervisor", "ERROR"):
            loop = self.supervisor.spawn("broken", lambda: 1 / 0, restart_min=60, restart_max=60)
            self.wait_for(lambda: loop.restarts == 1, "the failure")
        self.assertEqual(loop.state, RESTARTING)
        self.assertFalse(self.supervisor.healthy)

    def test_the_backoff_doubles_up_to_its_cap(self):
        delays = []

        def fail():
            delays.append(loop.delay)
            raise RuntimeError("again")

        with self.assertLogs("realtime.supervisor", "ERROR"):
            loop = self.supervisor.spawn("crashing", fail, restart_min=0.05, restart_max=0.2)
            self.wait_for(lambda: len(delays) >= 5, "five runs")
        self.assertEqual(delays[:5], [0.05, 0.1, 0.2, 0.2, 0.2])  # the wait after each run

    def test_a_one_off_task_is_counted_while_it_runs_and_logged_if_it_fails(self):
        go_on = gevent.event.Event()
        self.supervisor.run_task("catch-up", go_on.wait)
        self.supervisor.run_task("catch-up", go_on.wait)
        gevent.sleep(0)
        self.assertEqual(self.supervisor.tasks, {"catch-up": 2})
        go_on.set()
        self.wait_for(lambda: not self.supervisor.tasks, "both tasks done")
        with self.assertLogs("realtime.supervisor", "ERROR") as logs:
            failing = self.supervisor.run_task("replay", lambda: 1 / 0)
            failing.join()
        self.assertIn("background task replay failed", logs.output[0])
        self.assertIn("ZeroDivisionError", logs.output[0])  # with its traceback
        self.assertEqual(self.supervisor.tasks, {})  # not restarted, not counted
        self.assertTrue(self.supervisor.healthy)

    def test_the_connection_sweeper_lets_other_greenlets_run_during_a_long_pass(self):
        checked = []

        class Member:
            def check_liveness(self, now, *timeouts):
                checked.append(self)

        connections = OpenConnections()
        connections.connections.update(Member() for _ in range(2 * SWEEP_BATCH + 1))
        seen_by_others = []
        gevent.spawn(lambda: seen_by_others.append(len(checked)))
        connections.sweep(0.0, 25, 10, 0)
        self.assertEqual(len(checked), 2 * SWEEP_BATCH + 1)  # every one, once
        self.assertEqual(seen_by_others, [SWEEP_BATCH])  # it ran after the first batch, not after the pass

    def test_stopped_or_finished_loops_are_healthy_a_killed_one_is_dead(self):
        stopped = self.supervisor.spawn("stopped", gevent.sleep, 60)
        finished = self.supervisor.spawn("finished", lambda: None)
        killed = self.supervisor.spawn("killed", gevent.sleep, 60)
        gevent.sleep(0)
        stopped.stop()
        with self.assertLogs("realtime.supervisor", "ERROR") as logs:
            killed.greenlet.kill()
        self.assertEqual((stopped.state, finished.state, killed.state), (STOPPED, STOPPED, DEAD))
        self.assertIn("background loop killed is dead", logs.output[0])
        self.assertFalse(self.supervisor.healthy)


class LiveLoopMixin:
    def health(self):
        status, _, body = self.worker.http_get("/healthz")
        return status, json.loads(body)

    def wait_for_failure(self, name):
        """(status, health) of the first /healthz that shows loop `name` failed once."""
        return wait_until(lambda: (lambda h: h if h[1]["loops"].get(name, {}).get("restarts") else None)(
            self.health()), message=f"the failure of {name} in /healthz")


class SupervisedWorkerTests(LiveLoopMixin, LiveWebSocketTestCase):
    """A real worker whose broker listener is killed by a delivery that raises (tests.websocket_urls)."""

    use_redis = True
    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls"}

    def test_the_broker_listener_dies_is_restarted_and_chat_goes_on(self):
        ann = self.connect("/chat/", name="ann")
        bob = self.connect("/chat/", name="bob")
        for client in (ann, bob):
            client.receive_event("presence")
        self.connect("/time/").receive_event("time")
        status, health = self.health()
        self.assertEqual((status, health["status"]), (200, "ok"))
        # Every loop this worker has started so far, each supervised (the jobs watcher runs only without Redis).
        self.assertEqual(set(health["loops"]), {"broker-listener", "connection-sweeper", "presence-flusher", "gc-reclaim",
                                                "presence-refresher", "clock-ticker"})
        self.assertEqual(health["loops"]["broker-listener"], {"state": "running", "restarts": 0, "last_error": None})

        self.assertEqual(self.connect("/test/break-broker-listener/").receive(), "armed")
        redis.Redis.from_url(self.redis.url).publish("test:poison", "boom")
        # The worker says what happened, and that it is degraded until the listener runs again.
        status, health = self.wait_for_failure("broker-listener")
        self.assertEqual((status, health["status"], health["broker_connected"]), (503, "degraded", False))
        self.assertEqual(health["loops"]["broker-listener"]["state"], "restarting")
        self.assertEqual(health["loops"]["broker-listener"]["last_error"], "RuntimeError: test hook: a delivery that raises")
        log = self.worker.log()
        self.assertIn("background loop broker-listener failed; restart 1 in 1.0 s", log)
        self.assertIn("RuntimeError: test hook: a delivery that raises", log)

        wait_until(lambda: self.health()[0] == 200, message="healthy again")
        self.assertEqual(self.health()[1]["loops"]["broker-listener"]["state"], "running")
        metrics = self.worker.http_get("/metrics")[2]
        self.assertRegex(metrics, r'realtime_loop_restarts_total\{loop="broker-listener",pid="\d+"\} 1\.0')
        self.assertRegex(metrics, r'realtime_loop_up\{loop="broker-listener",pid="\d+"\} 1\.0')
        # What was published while nobody listened is replayed from the database on the open
        # sockets, as after any broker reconnect (nothing was, here), and live chat works again.
        ann.send_json("message", {"text": "still here"})
        self.assertEqual(bob.receive_event("message")["text"], "still here")


class SupervisedSweeperTests(LiveLoopMixin, LiveWebSocketTestCase):
    """The connection sweeper (liveness) killed by a liveness check that raises: restarted, it drops dead peers again."""

    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls", "WEBSOCKET_PING_INTERVAL": "0.5",
                  "WEBSOCKET_PING_TIMEOUT": "0.5"}

    def test_the_sweeper_dies_is_restarted_and_still_drops_a_peer_that_stops_answering(self):
        self.assertEqual(self.connect("/test/break-connection-sweeper/").receive(), "armed")
        status, health = self.wait_for_failure("connection-sweeper")
        self.assertEqual((status, health["status"], health["broker_connected"]), (503, "degraded", True))
        self.assertEqual(health["loops"]["connection-sweeper"]["last_error"],
                         "RuntimeError: test hook: a liveness check that raises")
        self.assertIn("background loop connection-sweeper failed; restart 1 in 1.0 s", self.worker.log())
        wait_until(lambda: self.health()[0] == 200, message="healthy again")

        # A client that reads but never answers pings: the sweeper pings it, then closes it with 1011.
        silent = RawClient(self.worker.port)
        self.addCleanup(silent.close)
        opcodes = []
        while (received := silent.read_frame()) is not None and received[0] != 0x8:
            opcodes.append(received[0])
        self.assertIn(0x9, opcodes)
        self.assertIsNotNone(received, "the connection ended without a close frame")
        self.assertEqual(struct.unpack("!H", received[1][:2])[0], 1011)
        self.assertEqual(self.health()[1]["loops"]["connection-sweeper"]["restarts"], 1)
