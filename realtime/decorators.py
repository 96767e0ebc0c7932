"""`@websocket`: hand a view its connection as the second argument (seed 003's API)."""

import functools


def websocket(view):
    """Call `view(request, ws, *args, **kwargs)` with the request's WebSocket connection.

    Equivalent to reading `request.META['wsgi.websocket']` in the view. The view needs no
    return value: the worker closes the connection (1000) when it returns.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return view(request, request.META["wsgi.websocket"], *args, **kwargs)

    return wrapper
