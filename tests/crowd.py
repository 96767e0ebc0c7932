"""A crowd of chat clients in one test process, pumped by one select() loop.

Each member behaves like a conforming client (docs/protocol.md): it follows the member list
(tests/member_list.py), keeps the id of the last message it has, and when the server
closes with a code that means "come back" it reconnects after a random delay within the window the
close reason gives, with `since`, to whichever worker `reconnect_to` names.
"""

import json
import random
import re
import select
import time

import websocket as websocket_client

from tests.member_list import MemberList

WINDOW = re.compile(r"reconnect_window=(\d+(?:\.\d+)?)")


class CrowdMember:
    def __init__(self, crowd, name, url):
        self.crowd, self.name = crowd, name
        self.list = MemberList()
        self.texts = []  # the texts of the messages it has, each once
        self.last_id = 0
        self.close_codes = []
        self.connects = 0
        self.ws = None
        self.reconnect_at = None
        self.open(url)

    def open(self, url):
        query = f"name={self.name}" + (f"&since={self.last_id}" if self.connects else "")
        self.ws = websocket_client.create_connection(f"{url}?{query}", timeout=10)
        self.connects += 1
        self.welcomed = False

    def fileno(self):
        return self.ws.sock.fileno()

    def read(self):
        """Handle the next frame (the socket is readable)."""
        try:
            opcode, data = self.ws.recv_data(control_frame=True)
        except (websocket_client.WebSocketConnectionClosedException, ConnectionError):
            self.lost(None, "")
            return
        if opcode == websocket_client.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            self.lost(code, data[2:].decode(errors="replace"))
        elif opcode == websocket_client.ABNF.OPCODE_TEXT:
            self.receive(json.loads(data))

    def receive(self, message):
        event, data = message["event"], message["data"]
        if event == "welcome":
            self.welcomed = True
            self.last_id = max(self.last_id, data["last_id"])
        elif event == "message":
            if data["text"] not in self.texts:
                self.texts.append(data["text"])
            self.last_id = max(self.last_id, data["id"])
        elif event == "resync":
            self.crowd.resyncs.append((self.name, data["reason"]))
        self.list.apply(event, data)

    def lost(self, code, reason):
        self.close_codes.append(code)
        try:
            self.ws.close(timeout=0.1)
        except Exception:
            pass
        self.ws = None
        told = WINDOW.search(reason)
        window = float(told.group(1)) if told else self.crowd.window
        self.reconnect_at = time.monotonic() + random.uniform(0, window)  # full jitter

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close(timeout=0.1)
            except Exception:
                pass
            self.ws = None


class Crowd:
    def __init__(self, window=1.0):
        self.members = []
        self.window = window  # the reconnect window when a close reason gives none
        self.resyncs = []
        self.reconnect_to = None  # the URL lost members come back to

    def join(self, name, url):
        member = CrowdMember(self, name, url)
        self.members.append(member)
        return member

    def pump_until(self, condition, timeout, what):
        """Read every socket and reconnect lost members until `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            for member in self.members:
                if member.ws is None and member.reconnect_at is not None and member.reconnect_at <= now:
                    member.reconnect_at = None
                    member.open(self.reconnect_to)
            open_members = [member for member in self.members if member.ws is not None]
            readable, _, _ = select.select(open_members, [], [], 0.05) if open_members else ([], [], [])
            for member in readable:
                member.read()

    def close(self):
        for member in self.members:
            member.close()
