"""The load generator's connections: picows on uvloop, all in this one process, on one core.

A `Client` is one WebSocket connection; what it does with each message is its `handler`, which
the scenarios swap (wait for `welcome`, echo back, record a fan-out delivery, ignore). Handlers
run inside picows' frame callback, so they are short and never block.
"""

import asyncio
import collections
import json
import re
import socket
import time
from array import array

from picows import WSListener, WSMsgType, ws_connect

now = time.perf_counter
CONTINUATION = WSMsgType.CONTINUATION
DATA = (WSMsgType.TEXT, WSMsgType.BINARY, CONTINUATION)
# Fan-out probes carry their sequence number in the chat text, which every server echoes verbatim.
PROBE = re.compile(rb"bench#(\d+)#")
WELCOME = b'"welcome"'


def probe_message(seq):
    """A chat `message` event whose text identifies the probe."""
    return json.dumps({"event": "message", "data": {"text": f"bench#{seq}#"}}).encode()


def ignore(client, frame):
    pass


def await_welcome(client, frame):
    # Backlog and notices may come first; a client is in the room once its welcome arrived.
    if WELCOME in frame.get_payload_as_bytes() and not client.welcomed.done():
        client.welcomed.set_result(None)
        client.handler = ignore


class Client(WSListener):
    def __init__(self, crowd, handler=ignore):
        self.crowd = crowd
        self.transport = None
        # Set before the handshake ends: the first message can arrive with the 101 response.
        self.handler = handler
        self.close_code = None  # the code of the server's close frame, if it sent one
        self.disconnected = False
        self.welcomed = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_frame(self, transport, frame):
        crowd = self.crowd
        msg_type = frame.msg_type
        if msg_type in DATA:
            # Only messages count as traffic for wait_quiet: servers ping idle clients all along.
            crowd.last_frame_at = now()
            if frame.fin:
                crowd.messages += 1
                self.handler(self, frame)
        elif msg_type is WSMsgType.CLOSE:
            code = frame.get_close_code()
            self.close_code = int(getattr(code, "value", code))
            crowd.close_codes[self.close_code] += 1
            transport.send_close(code)
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        self.disconnected = True
        if not self.crowd.closing:
            self.crowd.dropped += 1

    def send(self, data, binary=False):
        self.transport.send(WSMsgType.BINARY if binary else WSMsgType.TEXT, data)

    def stop_reading(self, receive_buffer=4096):
        """Become a client that never reads: the server's queue for it can only grow."""
        underlying = self.transport.underlying_transport
        sock = underlying.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        underlying.pause_reading()

    def resume_reading(self):
        self.transport.underlying_transport.resume_reading()


class Crowd:
    """All the connections of one scenario and what they have seen."""

    def __init__(self, progress=None):
        self.clients = []
        self.messages = 0
        self.last_frame_at = now()
        self.dropped = 0  # connections that ended while the scenario still used them
        self.close_codes = collections.Counter()
        self.connect_errors = collections.Counter()
        self.closing = False
        self.progress = progress

    async def connect(self, urls, count, *, welcome, deadline, concurrency=50, what="connecting", headers=None):
        """Open `count` connections spread over `urls`; return those that made it by `deadline`.

        With `welcome`, a connection counts once the chat server's welcome arrived. `headers`: more
        request headers (a subprotocol offer).
        """
        semaphore = asyncio.Semaphore(concurrency)
        opened = []

        async def one(url):
            async with semaphore:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("connect deadline passed")
                _, client = await asyncio.wait_for(
                    ws_connect(lambda: Client(self, await_welcome if welcome else ignore), url,
                               websocket_handshake_timeout=min(remaining, 30), max_frame_size=16 * 1024 * 1024,
                               extra_headers=headers),
                    remaining)
                if welcome:
                    await asyncio.wait_for(asyncio.shield(client.welcomed), max(0.01, deadline - time.monotonic()))
                opened.append(client)
                self.clients.append(client)

        async def report():
            while True:
                if self.progress:
                    self.progress.phase(f"{what} {len(opened)}/{count}")
                await asyncio.sleep(1)

        reporter = asyncio.get_running_loop().create_task(report())
        try:
            results = await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(count)), return_exceptions=True)
        finally:
            reporter.cancel()
        for result in results:
            if isinstance(result, BaseException):
                self.connect_errors[f"{type(result).__name__}: {result}"[:120]] += 1
        return opened

    async def wait_quiet(self, quiet=0.5, limit=60.0):
        """Wait until no message arrived for `quiet` s (setup traffic such as join notices is
        over), at most `limit` s. Returns how long it waited."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if now() - self.last_frame_at >= quiet:
                break
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    def close_all(self):
        self.closing = True
        for client in self.clients:
            if client.transport is not None:
                client.transport.disconnect(graceful=False)
        self.clients = []

    def health(self):
        """What went wrong with the connections, for the results."""
        return {"dropped": self.dropped, "close_codes": dict(self.close_codes),
                "connect_errors": dict(self.connect_errors)}


class Deliveries:
    """Fan-out bookkeeping: when each probe was published and when each copy arrived."""

    def __init__(self, subscribers):
        self.subscribers = subscribers
        self.sent_at = {}
        self.arrived = collections.Counter()
        self.latencies = array("d")
        self.recording = True
        self.on_complete = None  # called with a seq once every subscriber has it

    def published(self, seq):
        self.sent_at[seq] = now()

    def handler(self, client, frame):
        match = PROBE.search(frame.get_payload_as_memoryview())
        if match is None:
            return  # a notice (join, leave), not a probe
        seq = int(match.group(1))
        sent = self.sent_at.get(seq)
        if sent is None or not self.recording:
            return
        self.latencies.append(now() - sent)
        self.arrived[seq] += 1
        if self.on_complete is not None and self.arrived[seq] == self.subscribers:
            self.on_complete(seq)

    @property
    def expected(self):
        return len(self.sent_at) * self.subscribers

    @property
    def received(self):
        return len(self.latencies)
