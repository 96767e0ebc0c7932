"""The Django side of the websocket worker: `project.wsgi.websocket`.

Built on django-gevent-websocket's WebSocketHandler, which routes requests through
WEBSOCKET_URLCONF with Django's middleware. On current Django that package has two faults,
mended here without forking it:

1. A `@websocket` view returns None, so every closed connection was logged as a 500
   ("didn't return an HttpResponse"). Every view in WEBSOCKET_URLCONF is wrapped so that,
   once its socket was accepted, it ends with a quiet `WebSocketEnded` response.
2. A plain HTTP request to a WebSocket URL answered 500. It now gets 426 Upgrade Required
   with a readable body; a path that is not routed gets Django's ordinary 404.
"""

import functools
import logging

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse, HttpResponseForbidden
from django_websocket.wsgi import WebSocketHandler as PackageHandler

from .db import release_db_connections
from .origin import origin_allowed
from .transport.codes import INTERNAL_ERROR

log = logging.getLogger("realtime")


class WebSocketEnded(HttpResponse):
    """What a WebSocket view 'returns' to Django after its connection ended; never sent."""

    status_code = 101


def upgrade_required():
    response = HttpResponse(
        "426 Upgrade Required: this URL speaks WebSocket. Connect with a WebSocket client "
        "(new WebSocket(url) in a browser), not plain HTTP.\n",
        status=426, content_type="text/plain; charset=utf-8")
    response["Upgrade"] = "websocket"
    response["Sec-WebSocket-Version"] = "13"
    return response


def websocket_view(view):
    """Wrap a view routed in WEBSOCKET_URLCONF (the mend for both faults above)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        ws = request.META.get("wsgi.websocket")
        if ws is None:
            return upgrade_required()
        origin = request.META.get("HTTP_ORIGIN")
        if origin is not None and not origin_allowed(request, origin):
            # Another site's page must not open a socket that carries our user's cookies.
            return HttpResponseForbidden(f"Origin {origin} is not allowed to open WebSockets here.\n",
                                         content_type="text/plain; charset=utf-8")
        # A socket may stay open for hours: never keep a database connection across waits.
        ws.before_wait = release_db_connections
        try:
            response = view(request, *args, **kwargs)
        except Exception:
            if not ws.accepted:
                raise
            if not ws.closed:
                ws.close(INTERNAL_ERROR, "internal error")
            log.exception("WebSocket view %s failed", request.path)
            return WebSocketEnded()
        if ws.accepted:
            return WebSocketEnded()
        return response

    return wrapped


class WebSocketApplication(PackageHandler):
    def get_response(self, request):
        request.urlconf = settings.WEBSOCKET_URLCONF
        # Skip the package's get_response: it answers plain HTTP with a 500 before routing.
        return WSGIHandler.get_response(self, request)

    def make_view_atomic(self, view):
        return websocket_view(super().make_view_atomic(view))


def get_websocket_application():
    django.setup(set_prefix=False)
    return WebSocketApplication()
