"""A TCP proxy on a loopback port that can lose what the server says, then cut every connection:
a connection that dies after the server got a message but before its answer reached the client."""

import socket
import threading


class CutProxy:
    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.replies_lost = threading.Event()  # set: bytes from the server are dropped, not forwarded
        self.sockets = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return  # closed
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self.pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, True), daemon=True).start()

    def pump(self, source, destination, from_server):
        try:
            while data := source.recv(65536):
                if not (from_server and self.replies_lost.is_set()):
                    destination.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, destination):
                self.shut(sock)

    @staticmethod
    def shut(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump, blocked in recv
        except OSError:
            pass
        sock.close()

    def cut(self):
        """End every connection (their pumps end them both ways); new ones are proxied again."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            self.shut(sock)

    def close(self):
        self.listener.close()
        self.cut()
