"""The socket-free transport core, fed bytes by hand with a clock the test moves."""

import signal
import struct

import gevent
import gevent.socket
from django.test import SimpleTestCase
from hypothesis import given, settings as hypothesis_settings, strategies as st
from websockets.frames import Close

from realtime.fanout.hub import text_frame
from realtime.transport import Connection, Core, Limits
from realtime.transport.core import IDLE, LINGER, NOW, SEND, WAIT_FOR_ROOM, Closing
from tests.raw import frame

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
ALLOWED_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013} | set(range(3000, 5000))


def sent_frames(core):
    """(opcode, payload) of every frame the core wants to send."""
    return parse_frames(b"".join(core.data_to_send()))


def parse_frames(data):
    """(opcode, payload) of each server frame (unmasked) in `data`."""
    frames = []
    while data:
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((opcode, data[offset:offset + length]))
        data = data[offset + length:]
    return frames


def close_code_sent(frames):
    """The code of the last close frame among `frames` ("no code" for an empty one), or None."""
    closes = [Close.parse(payload).code if payload else "no code" for opcode, payload in frames if opcode == CLOSE]
    return closes[-1] if closes else None


class CoreTests(SimpleTestCase):
    def core(self, **limits):
        return Core(Limits(**limits), now=0.0)

    def test_a_ping_flood_is_closed_with_1008_once_the_frame_budget_is_spent(self):
        core = self.core(frame_rate=200, frame_burst=400)
        core.receive_data(frame(PING, b"p" * 125) * 1000, now=0.5)
        frames = sent_frames(core)
        self.assertEqual(close_code_sent(frames), 1008)
        self.assertEqual(core.cause, "frame_flood")
        # Only the frames within the budget were answered.
        self.assertLessEqual(sum(1 for opcode, _ in frames if opcode == PONG), 1000)
        self.assertTrue(core.closed)

    def test_pings_within_the_budget_are_answered_and_cost_nothing_else(self):
        core = self.core()
        for second in range(5):
            core.receive_data(frame(PING, b"hi") * 100, now=float(second))
        self.assertFalse(core.closed)
        self.assertEqual(sent_frames(core), [(PONG, b"hi")] * 500)

    def test_empty_continuations_count_against_the_budget(self):
        core = self.core()
        core.receive_data(frame(TEXT, b"a", fin=False) + frame(CONT, b"", fin=False) * 5000, now=0.1)
        self.assertEqual(close_code_sent(sent_frames(core)), 1008)
        self.assertEqual(core._fragments, [])  # nothing kept

    def test_a_message_of_too_many_fragments_is_closed_with_1009(self):
        core = self.core(frame_rate=0)
        core.receive_data(frame(TEXT, b"a", fin=False) + frame(CONT, b"b", fin=False) * 2000, now=0.1)
        self.assertEqual(close_code_sent(sent_frames(core)), 1009)
        self.assertEqual(core.cause, "message_too_big")

    def test_a_close_between_fragments_completes_the_closing_handshake_normally(self):
        core = self.core()
        core.receive_data(frame(TEXT, b"hel", fin=False) + frame(CLOSE, struct.pack("!H", 1000)), now=0.1)
        self.assertEqual(sent_frames(core), [(CLOSE, struct.pack("!H", 1000))])  # echoed, not 1002
        self.assertEqual(core.close_code, 1000)
        self.assertEqual(list(core.messages), [])

    def test_messages_over_the_rate_get_a_notice_then_1008(self):
        notices = []
        core = Core(Limits(rate=10, burst=20), now=0.0, on_rate_limited=lambda rate: notices.append(rate) or "slow down")
        core.receive_data(frame(TEXT, b"x") * 20, now=0.0)
        self.assertEqual(len(core.messages), 20)
        core.receive_data(frame(TEXT, b"x") * 5, now=0.0)
        self.assertEqual(len(core.messages), 20)  # dropped
        self.assertEqual(notices, [10])  # one notice a second at most
        self.assertEqual(sent_frames(core), [(TEXT, b"slow down")])
        core.receive_data(frame(TEXT, b"x") * 30, now=0.5)
        self.assertEqual(close_code_sent(sent_frames(core)), 1008)
        self.assertEqual(core.cause, "rate_limited")

    def test_a_route_may_lower_the_size_limit_before_the_first_message(self):
        core = self.core()
        core.max_message_size = 100
        core.receive_data(frame(TEXT, b"x" * 100), now=0.0)
        self.assertEqual(list(core.messages), ["x" * 100])
        core.receive_data(frame(TEXT, b"x" * 101), now=0.0)
        self.assertEqual(close_code_sent(sent_frames(core)), 1009)

    def test_a_peer_vanishing_mid_frame_is_no_failure_of_its_own(self):
        core = self.core()
        core.receive_data(frame(TEXT, b"hello")[:4], now=0.0)
        core.receive_eof()
        self.assertTrue(core.closed)
        self.assertIsNone(core.cause)  # not logged or counted as a protocol error

    def test_invalid_utf8_is_closed_with_1007(self):
        core = self.core()
        core.receive_data(frame(TEXT, b"a", fin=False) + frame(CONT, b"\xff"), now=0.0)
        self.assertEqual(close_code_sent(sent_frames(core)), 1007)

    def test_a_failure_is_one_close_action_counted_once(self):
        core = self.core()
        action = core.receive_data(frame(TEXT, b"\xff"), now=0.0)
        self.assertEqual(action, Closing("invalid_data"))  # counted and logged by the shell, once
        self.assertIsNone(action.cut)  # the view's end and the closing handshake finish it
        self.assertEqual(close_code_sent(sent_frames(core)), 1007)
        self.assertIsNone(core.receive_data(frame(TEXT, b"\xff"), now=0.0))  # not looked at again
        self.assertIsNone(core.abort(1013, "slow consumer: send queue full", "slow_consumer"))
        self.assertEqual(core.cause, "invalid_data")

    def test_what_the_protocol_owes_the_peer_is_a_send_action(self):
        core = self.core()
        self.assertIs(core.receive_data(frame(PING, b"hi"), now=0.0), SEND)
        self.assertEqual(sent_frames(core), [(PONG, b"hi")])
        self.assertIsNone(core.receive_data(frame(TEXT, b"hello"), now=0.0))  # a message: nothing to write
        self.assertEqual(list(core.messages), ["hello"])

    def test_a_view_s_message_is_framed_by_its_type_and_text_must_be_utf8(self):
        core = self.core()
        self.assertIs(core.send("é"), SEND)
        self.assertIs(core.send(b"\xff"), SEND)
        self.assertIs(core.send(b"ok", binary=False), SEND)
        self.assertEqual(sent_frames(core), [(TEXT, "é".encode()), (BINARY, b"\xff"), (TEXT, b"ok")])
        with self.assertRaises(UnicodeDecodeError):
            core.send(b"\xff", binary=False)  # refused here, not by the browser (which would close 1007)
        with self.assertRaisesMessage(TypeError, "send() takes str or bytes, not int"):
            core.send(42)
        self.assertEqual(sent_frames(core), [])  # nothing framed for either
        self.assertFalse(core.closed)

    def test_liveness_decisions(self):
        core = Core(Limits(), now=0.0)
        core.ping_share = 1.0

        def quiet():
            raise AssertionError("the socket's unread bytes are asked only of a peer that seems dead")

        self.assertIsNone(core.liveness(5.0, ping_interval=10, ping_timeout=5, idle_timeout=100, unread_bytes=quiet))
        self.assertIs(core.liveness(10.0, 10, 5, 100, quiet), SEND)
        self.assertEqual(sent_frames(core), [(PING, b"")])
        self.assertIsNone(core.liveness(14.0, 10, 5, 100, quiet))  # waiting for the answer
        core.receive_data(frame(PONG, b""), now=14.5)  # any bytes prove life
        self.assertIsNone(core.liveness(16.0, 10, 5, 100, quiet))
        self.assertEqual(core.liveness(101.0, 10, 5, 100, quiet), IDLE)  # pongs are not messages
        self.assertEqual(close_code_sent(sent_frames(core)), 1001)
        self.assertFalse(IDLE.warn)  # a normal end: counted, not logged as the peer's fault
        self.assertIsNone(core.liveness(500.0, 10, 5, 100, quiet))  # closing already

    def test_a_peer_that_does_not_answer_a_ping_is_dropped_at_once_unless_its_answer_waits_unread(self):
        core = Core(Limits(), now=0.0)
        core.ping_share = 1.0
        core.liveness(10.0, 10, 5, 0, lambda: 0)
        sent_frames(core)
        # Bytes wait in our socket buffer: the worker was too busy to read its answer.
        self.assertIsNone(core.liveness(15.5, 10, 5, 0, lambda: 6))
        self.assertFalse(core.closed)
        self.assertIs(core.liveness(20.0, 10, 5, 0, lambda: 6), SEND)  # so it is pinged again later
        sent_frames(core)
        action = core.liveness(25.5, 10, 5, 0, lambda: 0)
        self.assertEqual(action, Closing("keepalive_timeout", NOW))  # cut at once: no linger for the dead
        self.assertEqual(close_code_sent(sent_frames(core)), 1011)

    def test_send_queue_accounting(self):
        core = self.core(max_queue_bytes=10, max_queue_messages=3)
        core.queue(b"12345")
        core.queue(b"")  # the half-close marker costs no bytes
        self.assertIsNone(core.overflow())
        self.assertEqual(core.take_pending(), b"12345")
        self.assertEqual(core.take_pending(), b"")
        self.assertEqual((len(core.pending), core.pending_bytes), (0, 0))

    def test_a_full_send_queue_closes_fan_out_s_slow_consumer_with_1013(self):
        for limits, chunks in (({"max_queue_messages": 3}, [b"x"] * 4), ({"max_queue_bytes": 10}, [b"x" * 6] * 2)):
            core = self.core(**limits)
            for chunk in chunks[:-1]:
                core.queue(chunk)
                self.assertIsNone(core.overflow())
            core.queue(chunks[-1])
            self.assertEqual(core.overflow(), Closing("slow_consumer", LINGER))  # the close frame may still go out
            self.assertEqual((len(core.pending), core.pending_bytes), (0, 0))  # what waited is dropped
            self.assertEqual(close_code_sent(sent_frames(core)), 1013)
            self.assertIsNone(core.overflow())  # once

    def test_a_view_s_send_waits_for_room_and_closes_only_if_none_comes(self):
        core = self.core(max_queue_messages=1)
        core.queue(b"a")
        core.queue(b"b")
        self.assertIs(core.overflow(may_wait=True), WAIT_FOR_ROOM)
        self.assertFalse(core.closed)
        # The queue drained while this sender waited, and another sender filled it again: the
        # client reads, so this send goes on (two senders on one socket must not close it).
        self.assertIsNone(core.waited_for_room(drained=True))
        self.assertFalse(core.closed)
        # Not drained within the wait: the client stopped reading.
        self.assertEqual(core.waited_for_room(drained=False), Closing("slow_consumer", LINGER))
        self.assertEqual(close_code_sent(sent_frames(core)), 1013)

    def test_held_frames_count_against_the_send_queue(self):
        core = self.core(max_queue_messages=3, max_queue_bytes=100)
        core.queue(b"x" * 10)
        self.assertIsNone(core.hold(10))
        self.assertIsNone(core.hold(10))
        self.assertEqual((core.held, core.pending_bytes), (2, 30))
        self.assertEqual(core.hold(10), Closing("slow_consumer", LINGER))  # not held: one too many
        self.assertEqual(close_code_sent(sent_frames(core)), 1013)
        for _ in range(2):
            core.release(10)  # the paused subscription resumes or leaves
        self.assertEqual((core.held, core.pending_bytes), (0, 0))
        core = self.core(max_queue_bytes=100)
        self.assertEqual(core.hold(101), Closing("slow_consumer", LINGER))  # bytes count, not only frames

    def test_closing_at_once_keeps_the_rest_of_a_frame_the_socket_took_part_of(self):
        core = self.core(max_queue_messages=2)
        first, second = text_frame(b"a" * 300), text_frame(b"b" * 300)
        taken = first[:100]  # the socket took this much of the first frame
        core.queue(first[100:], partly_sent=True)
        core.queue(second)
        core.queue(second)
        action = core.overflow()
        self.assertEqual(action, Closing("slow_consumer", LINGER))
        self.assertEqual(list(core.pending), [first[100:]])  # the rest goes out first, whole
        close = b"".join(core.data_to_send())
        # What the client reads: the whole first frame, then our close frame; nothing garbled.
        self.assertEqual(parse_frames(taken + core.take_pending() + close),
                         [(TEXT, b"a" * 300), (CLOSE, struct.pack("!H", 1013) + b"slow consumer: send queue full")])

    def test_a_chunk_the_writer_took_is_the_writer_s_and_a_cut_drops_everything(self):
        core = self.core()
        core.queue(b"rest", partly_sent=True)
        self.assertEqual(core.take_pending(), b"rest")  # in the writer's hands: it finishes it
        core.queue(b"more")
        core.abort(1013, "slow", "slow_consumer")
        self.assertEqual(list(core.pending), [])  # nothing of its own was begun
        core.queue(b"rest", partly_sent=True)
        core.drop_pending()  # the TCP connection is cut
        self.assertEqual((list(core.pending), core.pending_bytes, core.partly_sent), ([], 0, False))

    def test_a_failed_peer_is_read_at_a_trickle(self):
        core = self.core()
        self.assertEqual(core.read_pause(), 0)
        core.close(1000)
        self.assertEqual(core.read_pause(), 0)  # our own close: its echo is read at once
        core = self.core()
        core.receive_data(frame(TEXT, b"x", mask=False), now=0.0)  # unmasked: 1002
        self.assertGreater(core.read_pause(), 0)

    @hypothesis_settings(max_examples=300, deadline=None, database=None)
    @given(chunks=st.lists(st.one_of(
        st.binary(max_size=64),
        st.builds(lambda op, payload, fin, rsv, mask: frame(op, payload, fin, rsv, mask),
                  st.sampled_from([TEXT, BINARY, CLOSE, PING, PONG, CONT, 3, 11]), st.binary(max_size=200),
                  st.booleans(), st.sampled_from([0, 0, 0, 4]), st.sampled_from([True, True, True, False]))),
        max_size=40))
    def test_arbitrary_bytes_never_raise_never_exceed_a_limit_and_close_with_an_allowed_code(self, chunks):
        limits = Limits(max_message_size=300, rate=5, burst=5, frame_rate=20, frame_burst=20,
                        max_queue_bytes=1000, max_queue_messages=10)
        core = Core(limits, now=0.0, on_rate_limited=lambda rate: "notice")
        out = []
        for i, chunk in enumerate(chunks):
            if core.protocol.close_rcvd is not None or core.protocol.parser_exc is not None:
                break
            core.receive_data(chunk, now=i * 0.01)
            out += core.data_to_send()
            self.assertLessEqual(len(core.messages), limits.burst)
            self.assertLessEqual(sum(len(m) for m in core.messages), limits.burst * limits.max_message_size)
            self.assertLessEqual(len(core._fragments), 21)
            self.assertLessEqual(sum(len(f) for f in core._fragments), limits.max_message_size)
        core.receive_eof()
        out += core.data_to_send()
        code = close_code_sent(parse_frames(b"".join(out)))
        self.assertTrue(code in (None, "no code") or code in ALLOWED_CLOSE_CODES, code)


class FinishTests(SimpleTestCase):
    """The shell on a gevent socket pair: no server, no monkey-patching."""

    def test_finish_returns_when_the_socket_died_while_the_writer_was_blocked(self):
        """The writer sits in a send the peer never reads; the connection is aborted without
        linger (a keepalive timeout), and the view's finish() runs before the writer wakes.
        finish() used to wait on an event that was already set, in a loop, and never yield:
        the whole worker froze (SlowConsumerTests failed one run in four)."""
        ours, peer = gevent.socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        for sock in (ours, peer):
            sock.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_SNDBUF, 4096)
            sock.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_RCVBUF, 4096)
        connection = Connection(ours, ours.makefile("rb"), {"PATH_INFO": "/test/"}, accept=lambda: None,
                                limits=Limits(), close_timeout=0.5)
        connection.accept()
        for _ in range(50):  # the peer never reads: the writer greenlet blocks in sendall
            connection.send_frame(b"\x82\x7e\x04\x00" + b"x" * 1024)
        gevent.sleep(0.05)
        self.assertTrue(connection._writing)

        def spinning(signum, frame):
            raise AssertionError("finish() spun without yielding: the worker would freeze")

        previous = signal.signal(signal.SIGALRM, spinning)
        self.addCleanup(signal.signal, signal.SIGALRM, previous)
        signal.alarm(3)
        try:
            with self.assertLogs("realtime.connection", "WARNING"):
                connection.abort(1011, "keepalive ping timeout", "keepalive_timeout", linger=False)
            connection.finish()
        finally:
            signal.alarm(0)
        self.assertTrue(connection.closed)
