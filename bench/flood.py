"""The `flood` scenario: one hostile client floods a worker; how long do its neighbours wait?

A bystander echoes a short text every 20 ms on the same server while a raw client writes one kind
of frame as fast as its socket takes it and never reads: pings (each owed a pong), unsolicited
pongs, empty continuation frames after an unfinished text frame, and 1-byte text messages. Each
kind follows the other on one server, each after a second of calm echoes (a server a flood left
stuck shows there); ours runs with its default limits (the other scenarios lift the rate limits).
"""

import asyncio
import base64
import os
import struct
from urllib.parse import urlsplit

from .loadgen import Crowd, now
from .stats import summarize_latencies

# An echo that has not come back after this long counts as never.
ECHO_GIVE_UP = 10.0

ECHO = "/echo/"
BYSTANDER_EVERY = 0.02
TEXT, CLOSE, PING, PONG, CONT = 0x1, 0x8, 0x9, 0xA, 0x0
KINDS = ("ping", "pong", "continuation", "tiny-text")


def frame(opcode, payload=b"", fin=True):
    """A masked client frame (small payloads only; the mask is zero, which RFC 6455 allows)."""
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def flood_bytes(kind):
    """(what to send once, what to repeat) for a kind of flood."""
    if kind == "ping":
        return b"", frame(PING, b"p" * 125)
    if kind == "pong":
        return b"", frame(PONG, b"p" * 125)
    if kind == "continuation":
        return frame(TEXT, b"a", fin=False), frame(CONT, b"", fin=False)
    return b"", frame(TEXT, b"x")


async def raw_connect(url):
    parts = urlsplit(url)
    # A small buffer limit: asyncio stops reading from the socket once 128 KiB wait unread.
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=64 * 1024)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return reader, writer


def last_close_code(data):
    """The code of the last close frame among the server frames in `data`, if any."""
    code = None
    while len(data) >= 2:
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            break
        if opcode == CLOSE and length >= 2:
            code = struct.unpack("!H", data[offset:offset + 2])[0]
        data = data[offset + length:]
    return code


async def flooder(url, kind, seconds):
    """Flood for `seconds` (or until the server cuts us off) without reading; what happened."""
    reader, writer = await raw_connect(url)
    prefix, unit = flood_bytes(kind)
    chunk = unit * (65536 // len(unit))
    started, cut_after, sent = now(), None, 0
    writer.write(prefix)
    try:
        while (left := seconds - (now() - started)) > 0:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), min(left, 0.5))
            sent += len(chunk)
    except asyncio.TimeoutError:  # before OSError: it is one since Python 3.11
        pass  # the server stopped reading us: it gave up on us, or it is frozen
    except (ConnectionError, OSError):
        cut_after = now() - started
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(1024 * 1024), 2):
            received += chunk
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    writer.transport.abort()
    return {"sent_mb": round(sent / 2**20, 1), "cut_after_s": cut_after and round(cut_after, 2),
            "close_code": last_close_code(received)}


async def bystander(client, stop, rtts):
    """Echo a short text every 20 ms; record each round trip (the last one open counts too)."""
    waiting = {}

    def on_echo(client, frame):
        sent = waiting.pop("sent", None)
        if sent is not None:
            rtts.append(now() - sent)
        waiting["done"].set()

    client.handler = on_echo
    while not stop.is_set():
        waiting["done"] = asyncio.Event()
        waiting["sent"] = now()
        client.send(b"tick")
        try:
            await asyncio.wait_for(waiting["done"].wait(), ECHO_GIVE_UP)
        except asyncio.TimeoutError:
            rtts.append(float("inf"))
            return
        await asyncio.sleep(BYSTANDER_EVERY)


def echo_summary(rtts):
    """The bystander's round trips in ms (an echo that never came counts as infinitely late)."""
    summary = summarize_latencies(rtts, len(rtts), ECHO_GIVE_UP)
    return {key: summary[key] for key in ("expected", "lost", "p50_ms", "p99_ms", "max_ms")}


async def flood(ctx, kind, cfg):
    """Each kind of flood in turn on one server: a second of calm echoes, then the flood."""
    results = {}
    async with ctx.stack(kind, default_limits=True) as stack:
        crowd = Crowd(ctx.progress)
        try:
            echo = stack.urls(ECHO)[0]
            clients = await crowd.connect([echo], 1, welcome=False, deadline=now() + 30)
            if not clients:
                return {"error": "the bystander could not connect", **crowd.health()}
            for flood_kind in cfg.get("kinds", KINDS):
                ctx.progress.phase(f"{flood_kind} flood")
                calm, during = [], []
                stop = asyncio.Event()
                task = asyncio.get_running_loop().create_task(bystander(clients[0], stop, calm))
                await asyncio.sleep(1)
                stop.set()
                await asyncio.wait_for(task, ECHO_GIVE_UP + 5)
                stop = asyncio.Event()
                task = asyncio.get_running_loop().create_task(bystander(clients[0], stop, during))
                flooded = await flooder(echo, flood_kind, cfg["seconds"])
                stop.set()
                await asyncio.wait_for(task, ECHO_GIVE_UP + 5)
                results[flood_kind] = {"flooder": flooded, "calm": echo_summary(calm), "during": echo_summary(during)}
                if calm and calm[-1] == float("inf") or during and during[-1] == float("inf"):
                    break  # the bystander's echo never came back: this server is stuck
        finally:
            crowd.close_all()
    return {"seconds": cfg["seconds"], "kinds": results, **crowd.health()}
