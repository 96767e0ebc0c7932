"""Echo and chat consumers, written the way the Channels tutorial writes them.

The chat consumer speaks our room protocol (docs/protocol.md) in its essentials: `welcome`
once subscribed, and each `message` {"text"} validated by a form, stored in the database,
then broadcast to the group as a `message` event. It skips join/leave/nick notices, history
and resume: those are setup traffic, not what the benchmark measures.
"""

import json
import random

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django import forms
from django.utils import timezone

from .models import Message

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4"]


class MessageForm(forms.Form):
    text = forms.CharField(max_length=2000, strip=True)


def envelope(event, data):
    return json.dumps({"event": event, "data": data})


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = f"chat_{self.room}"
        self.name = f"guest-{random.randrange(16**4):04x}"
        self.color = random.choice(PALETTE)
        await self.accept()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send(text_data=envelope("welcome", {"room": self.room, "name": self.name, "color": self.color}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data)
            event, data = message["event"], message.get("data") or {}
        except (TypeError, ValueError, KeyError):
            return await self.send(text_data=envelope("error", {"code": "invalid_envelope"}))
        if event != "message":
            return await self.send(text_data=envelope("error", {"code": "unknown_event"}))
        form = MessageForm({"text": data.get("text")})
        if not form.is_valid():
            return await self.send(text_data=envelope("error", {"code": "invalid_message"}))
        stored = await self.store(form.cleaned_data["text"])
        payload = envelope("message", {
            "id": stored.id, "room": self.room, "name": stored.name, "color": stored.color, "text": stored.text,
            "ts": stored.created.isoformat().replace("+00:00", "Z")})
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "payload": payload})

    @database_sync_to_async
    def store(self, text):
        return Message.objects.create(room=self.room, name=self.name, color=self.color, text=text)

    async def chat_message(self, event):
        await self.send(text_data=event["payload"])
