"""daphne channels_app.asgi:application: the same echo and room routes as our websocket worker."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_app.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()  # sets Django up before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from .consumers import ChatConsumer, EchoConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": URLRouter([
        path("echo/", EchoConsumer.as_asgi()),
        re_path(r"^chat/(?P<room>[a-z0-9_-]{1,64})/$", ChatConsumer.as_asgi()),
    ]),
})
