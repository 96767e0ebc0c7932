"""One hostile client floods a real worker; a bystander on the same worker must not notice.

Each flooder writes as fast as its socket takes it and never reads. What the flooder sees: a
close frame (1008 for a flood, 1009 for a message too big) waiting in its receive buffer. What
the bystander sees: every echo, none of them stalled.
"""

import threading
import time

from realtime.testing import LiveWebSocketTestCase, wait_until
from tests.raw import RawClient, frame

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
FLOOD_SECONDS = 2.0
# A stall detector, not a speed target (those are in `make bench`'s flood scenario): before the
# fix the bystander got no echo at all for the whole flood.
BYSTANDER_WORST_ECHO = 1.0
MEMORY_GROWTH_LIMIT = 16 * 1024 * 1024


def echo(client):
    client.send("tick")
    assert client.receive(timeout=30) == "tick"


class Bystander(threading.Thread):
    """Makes a round trip every 20 ms (an echo, by default) and records how long each one took."""

    def __init__(self, client, round_trip=echo):
        super().__init__(daemon=True)
        self.client, self.round_trip, self.times, self.stop = client, round_trip, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            self.round_trip(self.client)
            self.times.append(time.monotonic() - started)
            time.sleep(0.02)


class FloodTests(LiveWebSocketTestCase):
    def flood(self, prefix, unit):
        """Flood with `prefix` then `unit` repeated, never reading; the close code the worker sent."""
        flooder = RawClient(self.worker.port, timeout=10)
        self.addCleanup(flooder.close)
        chunk = unit * max(1, 65536 // len(unit))
        bystander = Bystander(self.connect("/echo/"))
        bystander.start()
        rss_before = self.worker.rss()
        flooder.send(prefix)
        deadline = time.monotonic() + FLOOD_SECONDS
        flooder.sock.settimeout(0.5)
        try:
            while time.monotonic() < deadline:
                flooder.send(chunk)
        except OSError:
            pass  # the worker stopped reading (a send blocked) or cut the connection: the flood is over
        flooder.sock.settimeout(10)
        code = flooder.close_code()
        flooder.close()
        time.sleep(max(0.2, deadline - time.monotonic()))  # the bystander goes on for the whole time
        bystander.stop.set()
        bystander.join(timeout=30)
        self.assertFalse(bystander.is_alive(), "the bystander's echo never came back")
        self.assertGreater(len(bystander.times), 10)
        self.assertLess(max(bystander.times), BYSTANDER_WORST_ECHO,
                        f"the bystander stalled: worst echo {max(bystander.times):.3f} s")
        self.assertLess(self.worker.rss() - rss_before, MEMORY_GROWTH_LIMIT)
        return code

    def test_a_ping_flood_is_closed_1008_and_stalls_nobody(self):
        self.assertEqual(self.flood(b"", frame(PING, b"p" * 125)), 1008)
        self.assert_counted("frame_flood")

    def test_a_pong_flood_is_closed_1008_and_stalls_nobody(self):
        self.assertEqual(self.flood(b"", frame(PONG, b"p" * 125)), 1008)

    def test_a_flood_of_empty_continuations_is_closed_1008_and_stalls_nobody(self):
        self.assertEqual(self.flood(frame(TEXT, b"a", fin=False), frame(CONT, b"", fin=False)), 1008)

    def test_a_flood_of_one_byte_messages_is_closed_1008_and_stalls_nobody(self):
        self.assertEqual(self.flood(b"", frame(TEXT, b"x")), 1008)
        self.assert_counted("rate_limited")

    def test_a_100_mib_message_sent_slowly_is_refused_1009_from_its_header(self):
        flooder = RawClient(self.worker.port)
        self.addCleanup(flooder.close)
        header = frame(BINARY, declared_length=100 * 1024 * 1024)[:14]
        flooder.send(header + b"x" * 1000)  # ...and the rest would follow slowly
        self.assertEqual(flooder.close_code(), 1009)

    def assert_counted(self, reason):
        wait_until(lambda: f'reason="{reason}"' in self.worker.http_get("/metrics")[2],
                   message=f"a close counted as {reason} in /metrics")
