"""`@websocket`: hand a view its connection as the second argument."""

import functools


def websocket(view=None, *, max_message_size=None):
    """Call `view(request, ws, *args, **kwargs)` with the request's WebSocket connection.

    Equivalent to reading `request.META['wsgi.websocket']` in the view. The view needs no
    return value: the worker closes the connection (1000) when it returns.

    `@websocket(max_message_size=16384)` gives a route a lower size limit than the worker's
    WEBSOCKET_MAX_MESSAGE_SIZE: a bigger message closes the connection with 1009 before it is read.
    """
    if view is None:
        return functools.partial(websocket, max_message_size=max_message_size)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        ws = request.META["wsgi.websocket"]
        if max_message_size is not None:
            ws.max_message_size = min(max_message_size, ws.max_message_size)
        return view(request, ws, *args, **kwargs)

    # The worker's routing calls `view` itself, with the same size limit (realtime/server/application.py).
    # `wrapper` is named so that a decorator applied on top, which copies this attribute, is not skipped.
    wrapper.websocket_takes_connection = (wrapper, view, max_message_size)
    return wrapper
