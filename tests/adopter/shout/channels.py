from realtime.channels import Channel, ChannelError, Forbidden, publish, topic


class MegaphoneChannel(Channel):
    """`megaphone:<room>`: anyone may listen, except to rooms named staff-...; members may shout."""

    def join(self, params):
        if self.kwargs["room"].startswith("staff-") and not self.user.is_staff:
            raise Forbidden("Staff only.")
        return {"room": self.kwargs["room"]}

    def handle_shout(self, data):
        text = data.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 200:
            raise ChannelError("invalid_text", "Shout 1 to 200 characters.")
        publish(self.topic, "shouted", {"text": text.upper(), "by": self.user.get_username() or "someone"})
        return {"length": len(text)}


topicpatterns = [topic("megaphone:<slug:room>", MegaphoneChannel)]
