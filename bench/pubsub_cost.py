"""Redis CPU per PUBLISH by the number of connections subscribed to the channel (issue 12).

In production a room's channel has one subscribed connection per worker process that holds a
member of the room, so this is how one Redis's cost per chat message grows with the workers:
`python -m bench.pubsub_cost` (a throwaway redis-server; a few seconds).
"""

import os
import selectors
import socket
import sys
import threading

MESSAGES = 20000
PAYLOAD = b"x" * 200  # about a chat message event


def main():
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DEBUG", "1")
    django.setup()
    import redis

    from realtime.testing import RedisServer

    server = RedisServer().start()
    try:
        print("subscribers  Redis CPU per PUBLISH")
        for subscribers in (1, 2, 8, 32):
            print(f"{subscribers:>11}  {1e6 * cost(redis, server.port, subscribers):.1f} µs", flush=True)
    finally:
        server.stop()


def cost(redis, port, subscribers):
    """Redis's CPU seconds per PUBLISH to `subscribers` connections that read everything."""
    sockets = []
    for _ in range(subscribers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"SUBSCRIBE room\r\n")
        sock.recv(100)
        sockets.append(sock)
    done = threading.Event()
    reader = threading.Thread(target=drain, args=(sockets, done))
    reader.start()
    client = redis.Redis(port=port)
    try:
        for _ in range(200):  # warm-up
            client.publish("room", PAYLOAD)
        before = cpu(client)
        for _ in range(MESSAGES):
            client.publish("room", PAYLOAD)
        return (cpu(client) - before) / MESSAGES
    finally:
        done.set()
        reader.join()
        client.close()
        for sock in sockets:
            sock.close()


def cpu(client):
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def drain(sockets, done):
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    while not done.is_set():
        for key, _ in selector.select(timeout=0.1):
            try:
                key.fileobj.recv(1 << 16)
            except BlockingIOError:
                pass
    selector.close()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
