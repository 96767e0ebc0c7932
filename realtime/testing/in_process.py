"""The socket interface views see, in this process and without a socket: a test double of `Connection`.

`InProcessWebSocket` is a second shell around the transport's `Core`, beside the worker's gevent
`Connection`: the same interface (realtime/transport/websocket.py), the same core deciding, but its
I/O is two in-memory pipes to a peer in the same process (the test's client: `WebsocketCommunicator`).

The peer speaks WebSocket frames and the core frames, parses and judges them, as it does in a
worker: that is what makes the double honest. Size limits (1009), budgets (1008 and the notice),
UTF-8 (1007), close codes and the closing handshake are the worker's own rules, not a copy
that could drift from them. Left out, because they are the kernel's: the pipe takes every byte at
once, so nothing waits in the send queue (no slow consumer, no frame written in part).
"""

from gevent.queue import Empty, Queue

from ..transport import WebSocket


class InProcessWebSocket(WebSocket):
    """A WebSocket connection whose peer is in this process: `peer_send()` what a client sends,
    `peer_receive()` what the server sent it."""

    __slots__ = ("_from_peer", "_to_peer", "_write_closed")

    def __init__(self, environ, *, accept, limits, close_timeout, on_rate_limited=None):
        super().__init__(environ, accept=accept, limits=limits, close_timeout=close_timeout,
                         on_rate_limited=on_rate_limited)
        self._from_peer = Queue()  # bytes the peer sent; b"": its end
        self._to_peer = Queue()  # bytes for the peer; b"": our end
        self._write_closed = False

    # --- the peer's end ---------------------------------------------------------------------

    def peer_send(self, data):
        """Bytes from the peer (b"": it ended its half of the connection)."""
        if not self._dead:
            self._from_peer.put(data)

    def peer_receive(self, timeout):
        """The next bytes for the peer, b"" once we ended the connection, None if nothing came
        within `timeout` s (the view's greenlet runs meanwhile)."""
        try:
            return self._to_peer.get(block=timeout > 0, timeout=timeout)
        except Empty:
            return None

    # --- the shell's I/O ----------------------------------------------------------------------

    def receive(self):
        """The next message: `str` for text, `bytes` for binary; `None` once closed."""
        self.accept()
        core = self.core
        while not core.messages:
            if self.closed:
                return None
            self._read_some()
        return core.messages.popleft()

    def _read_some(self):
        if self.before_wait is not None:
            self.before_wait()
        self._take_input(self._from_peer.get())

    def _write(self, data):
        if self._dead or self._write_closed:
            return
        if not data:
            self._write_closed = True
        self._to_peer.put(data)

    def _cut(self):
        self._dead = True
        self._from_peer.put(b"")  # a receive() waiting for the peer sees the end
        if not self._write_closed:
            self._write_closed = True
            self._to_peer.put(b"")
