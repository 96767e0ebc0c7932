"""The clock on a real worker: one ticker per process, and the `close` event."""

from datetime import datetime

from realtime.testing import LiveWebSocketTestCase

INTERVAL = 0.2


def ticks(client, count):
    """The next `count` ticks a client gets, by tick number."""
    return {tick["tick"]: tick for tick in (client.receive_event("time") for _ in range(count))}


def seconds(utc):
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp()


class ClockTests(LiveWebSocketTestCase):
    worker_env = {"CLOCK_INTERVAL": str(INTERVAL)}

    def test_two_clients_get_the_very_same_ticks_from_one_ticker(self):
        first = self.connect("/time/")
        ticks(first, 3)  # the worker has been ticking for a while
        second = self.connect("/time/")
        seen_by_first, seen_by_second = ticks(first, 5), ticks(second, 5)
        # What both users see at a given moment is one event, identical to the microsecond: made
        # once and fanned out, not made per socket (a loop per socket would count from 1 for each).
        common = seen_by_first.keys() & seen_by_second.keys()
        self.assertGreaterEqual(len(common), 3, (seen_by_first.keys(), seen_by_second.keys()))
        for number in common:
            self.assertEqual(seen_by_first[number], seen_by_second[number])
        self.assertGreater(min(seen_by_second), 1)
        self.assertEqual(sorted(seen_by_second), list(range(min(seen_by_second), min(seen_by_second) + 5)))
        # Every CLOCK_INTERVAL seconds (on average: one late tick makes the next gap shorter), in UTC.
        times = [seconds(seen_by_first[n]["utc"]) for n in sorted(seen_by_first)]
        self.assertAlmostEqual((times[-1] - times[0]) / (len(times) - 1), INTERVAL, delta=INTERVAL / 4)
        self.assertTrue(seen_by_first[min(seen_by_first)]["utc"].endswith("Z"))

    def test_close_event_gets_goodbye_then_a_clean_close_1000(self):
        client = self.connect("/time/")
        client.receive_event("time")
        client.send_json("close")
        self.assertIn("Bye", client.receive_event("goodbye")["detail"])
        self.assertEqual(client.receive_close(), 1000)

    def test_anything_else_gets_an_error_and_the_ticks_go_on(self):
        client = self.connect("/time/")
        client.send_json("stop")
        self.assertEqual(client.receive_event("error")["code"], "unknown_event")
        client.receive_event("time")
