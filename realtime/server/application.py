"""The Django side of the websocket worker: `project.wsgi.websocket`.

Built on django-gevent-websocket's WebSocketHandler, which routes requests through
WEBSOCKET_URLCONF with Django's middleware. On current Django that package has two faults,
mended here without forking it:

1. A `@websocket` view returns None, so every closed connection was logged as a 500
   ("didn't return an HttpResponse"). Every view in WEBSOCKET_URLCONF is wrapped so that,
   once its socket was accepted, it ends with a quiet `WebSocketEnded` response.
2. A plain HTTP request to a WebSocket URL answered 500. It now gets 426 Upgrade Required
   with a readable body; a path that is not routed gets Django's ordinary 404.

An idle connection's greenlet stays parked under this whole call chain, and greenlet keeps a
copy of the C stack under it (plus the interpreter frames): so nothing here adds a frame per
request that it can avoid (see `python -m bench.memory`).
"""

import functools
import logging
import types

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpResponse, HttpResponseForbidden
from django.urls import set_urlconf

from .. import conf

# The package refuses to import without settings.WEBSOCKET_URLCONF (it reads it at import); we
# route with conf.get (WebSocketRequest.urlconf below), so a project may leave it to our default.
if not hasattr(settings, "WEBSOCKET_URLCONF"):
    settings.WEBSOCKET_URLCONF = conf.DEFAULTS["WEBSOCKET_URLCONF"]

from django_websocket.wsgi import WebSocketHandler as PackageHandler  # noqa: E402  (after the default)

from ..db.readers import release_db_connections
from .origin import origin_allowed
from ..transport.codes import INTERNAL_ERROR
from ..transport.websocket import ConnectionClosed

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
    # A @websocket view is called here with its connection, not through its own wrapper: one
    # frame less under every parked view (the decorator's wrapper still serves direct calls).
    # Not when another decorator wraps it (it copied the attribute): that one is called.
    target = max_message_size = None
    takes_connection = getattr(view, "websocket_takes_connection", None)
    if takes_connection is not None and takes_connection[0] is view:
        _, target, max_message_size = takes_connection

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        # Few locals: this frame stays on the interpreter stack of every parked view.
        ws = request.META.get("wsgi.websocket")
        response = prepare(request, ws, max_message_size)
        if response is not None:
            return response
        try:
            if target is None:
                response = view(request, *args, **kwargs)
            elif args or kwargs:
                response = target(request, ws, *args, **kwargs)
            else:  # a call with *args/**kwargs recurses in C (~370 bytes of saved stack)
                response = target(request, ws)
        except ConnectionClosed:  # it sent to a client that had gone: the view simply ends
            if not ws.accepted:
                raise
            return WebSocketEnded()
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


def prepare(request, ws, max_message_size):
    """The answer to a request the route refuses, or None once `ws` is ready for the view."""
    if ws is None:
        return upgrade_required()
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None and not origin_allowed(request, origin):
        # Another site's page must not open a socket that carries our user's cookies.
        return HttpResponseForbidden(f"Origin {origin} is not allowed to open WebSockets here.\n",
                                     content_type="text/plain; charset=utf-8")
    # A socket may stay open for hours: never keep a database connection across waits.
    ws.before_wait = release_db_connections
    if max_message_size is not None:  # @websocket(max_message_size=...)
        ws.max_message_size = min(max_message_size, ws.max_message_size)
    return None


def call_middleware_directly(chain):
    """Let Django's middleware chain call each middleware's `__call__` method, not the instance.

    Calling an instance recurses in C (`slot_tp_call`): ~720 bytes of C stack per middleware,
    saved by greenlet for every parked connection. Calling its bound `__call__` is the same
    call, run in the same interpreter loop. The chain is Django's `convert_exception_to_response`
    wrappers around middleware instances, each holding the next wrapper as `get_response`; a
    link that looks different (function middleware, another Django) is left as it is.
    """
    link = chain
    while getattr(link, "__qualname__", "") == "convert_exception_to_response.<locals>.inner":
        cells = dict(zip(link.__code__.co_freevars, link.__closure__ or ()))
        if "get_response" not in cells:
            return
        cell = cells["get_response"]
        middleware = cell.cell_contents
        call = getattr(type(middleware), "__call__", None)
        if not isinstance(call, types.FunctionType):
            return  # a function or a bound method: already called without the C recursion
        cell.cell_contents = types.MethodType(call, middleware)
        link = getattr(middleware, "get_response", None)


class WebSocketRequest(WSGIRequest):
    # Routed through WEBSOCKET_URLCONF: a class attribute (set when the application is built)
    # rather than a get_response override that would stay on the stack of every parked view.
    urlconf = None


class WebSocketApplication(PackageHandler):
    request_class = WebSocketRequest
    # Skip the package's get_response: it answers plain HTTP with a 500 before routing.
    get_response = WSGIHandler.get_response

    def __init__(self):
        WebSocketRequest.urlconf = conf.get("WEBSOCKET_URLCONF")
        self._views = {}  # the resolved view -> its wrapper, built once per route
        self._routes = {}  # path -> its ResolverMatch (read only once made)
        super().__init__()

    def load_middleware(self, is_async=False):
        middleware = conf.get("WEBSOCKET_MIDDLEWARE")
        if middleware is None:
            super().load_middleware(is_async)
        else:
            # Django's loader reads MIDDLEWARE: lend it ours while it builds the chain (once, at startup).
            http_middleware = settings.MIDDLEWARE
            settings.MIDDLEWARE = middleware
            try:
                super().load_middleware(is_async)
            finally:
                settings.MIDDLEWARE = http_middleware
        call_middleware_directly(self._middleware_chain)

    # Paths resolved before: a crowd joins a few rooms, and each join would walk the URLconf again.
    # Bounded: past it (room names are the clients' to choose) new paths are resolved each time.
    ROUTES_REMEMBERED = 1000

    def resolve_request(self, request):
        match = self._routes.get(request.path_info)
        if match is None:
            match = super().resolve_request(request)  # Resolver404 is not remembered
            if len(self._routes) < self.ROUTES_REMEMBERED:
                self._routes[request.path_info] = match
        else:
            set_urlconf(request.urlconf)  # as Django's own resolve_request, for reverse() in views
            request.resolver_match = match
        return match

    def make_view_atomic(self, view):
        wrapped = self._views.get(view)
        if wrapped is None:
            wrapped = self._views[view] = websocket_view(super().make_view_atomic(view))
        return wrapped


def get_websocket_application():
    django.setup(set_prefix=False)
    return WebSocketApplication()
