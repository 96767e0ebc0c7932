"""A WebSocket layer for Django under gunicorn's gevent worker.

`@websocket` views routed through WEBSOCKET_URLCONF, the `{% websocket_url %}` tag, the
worker glue and (in later modules) the per-process hub. Views never touch a socket.
"""
