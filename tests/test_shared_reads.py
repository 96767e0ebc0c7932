"""SharedReads: a crowd of joiners shares database reads, and nobody gets a read older than its call."""

import gevent
from django.test import SimpleTestCase

from realtime.db import readers as db
from realtime.db.shared_reads import SharedReads


class SharedReadsTests(SimpleTestCase):
    def setUp(self):
        self.reads = SharedReads()
        self.started = []  # the "database state" each read saw, in the order reads started
        self.state = 0

    def load(self):
        self.started.append(self.state)
        gevent.sleep(0.05)  # the query takes a while: others arrive meanwhile
        return self.started[-1]

    def test_callers_during_a_read_share_the_next_one_which_starts_after_they_arrived(self):
        first = gevent.spawn(self.reads.get, "room", self.load)
        gevent.sleep(0.01)  # the first read is in flight
        self.state = 1  # a message was committed: whoever arrives now must see it
        crowd = [gevent.spawn(self.reads.get, "room", self.load) for _ in range(50)]
        gevent.joinall([first, *crowd], raise_error=True)
        self.assertEqual(first.value, 0)
        self.assertEqual({greenlet.value for greenlet in crowd}, {1})  # none got the older read
        self.assertEqual(self.started, [0, 1])  # 51 callers, two queries

    def test_other_keys_read_on_their_own_and_a_failed_read_fails_its_sharers(self):
        def broken():
            gevent.sleep(0.02)
            raise RuntimeError("the database went away")

        leader = gevent.spawn(self.reads.get, "a", broken)
        gevent.sleep(0.005)
        follower = gevent.spawn(self.reads.get, "a", broken)  # shares the read after the leader's
        other = gevent.spawn(self.reads.get, "b", self.load)
        gevent.joinall([leader, follower, other])
        self.assertIsInstance(leader.exception, RuntimeError)
        self.assertIsInstance(follower.exception, RuntimeError)
        self.assertEqual(other.value, 0)
        self.assertEqual(self.reads.get("a", lambda: "recovered"), "recovered")  # nothing left stuck


class DatabaseTurnsTests(SimpleTestCase):
    def test_at_most_size_reads_run_at_once_the_rest_wait_their_turn_and_each_caller_gets_its_own(self):
        readers = db.DatabaseTurns(size=3, idle=0.05)
        inside, most = [0], [0]

        def read(n):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            gevent.sleep(0.01)
            inside[0] -= 1
            if n == 7:
                raise ValueError("bad row")
            return n

        callers = [gevent.spawn(readers.run, lambda n=n: read(n)) for n in range(20)]
        gevent.joinall(callers)
        self.assertEqual(most[0], 3)
        self.assertEqual([c.value for c in callers], [None if n == 7 else n for n in range(20)])
        self.assertIsInstance(callers[7].exception, ValueError)  # the failure goes to its caller only
        gevent.sleep(0.2)
        self.assertEqual(readers.greenlets, 0)  # idle readers end (and close their connections)

