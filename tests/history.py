"""Chat rooms and history written straight to the database, numbered as post_message numbers it."""

from chat.models import Message, Room


def create_rooms(*names):
    """Rooms that exist, as an admin (or a logged-in user) would have opened them: anonymous
    clients may only join rooms that exist (and the lobby)."""
    for name in names:
        Room.objects.get_or_create(name=name)


def store_history(room_name, count):
    """Append messages "m0", "m1", ... to a room's history (the room is created if need be) without
    publishing them; returns the room. Their ids follow the room's last one, as posted ones would."""
    room, _ = Room.objects.get_or_create(name=room_name)
    Message.objects.bulk_create(Message(room=room, seq=room.last_seq + 1 + i, name="old", color="#000000", text=f"m{i}")
                                for i in range(count))
    room.last_seq += count
    room.save(update_fields=["last_seq"])
    return room


class RoomClientsMixin:
    """For a LiveWebSocketTestCase: `join` a chat room (created if need be) as a new client."""

    def join(self, room="lobby", worker=None, **query):
        create_rooms(room)
        client = self.connect(f"/chat/{room}/" if room != "lobby" else "/chat/", worker=worker, **query)
        client.receive_event("welcome")
        return client

    def texts_until(self, client, text):
        """The texts of the messages `client` gets, up to and including `text`."""
        texts = []
        while not texts or texts[-1] != text:
            texts.append(client.receive_event("message")["text"])
        return texts
