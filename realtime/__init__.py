"""A WebSocket layer for Django under gunicorn's gevent worker.

`@websocket` views routed through WEBSOCKET_URLCONF, the `{% websocket_url %}` tag, the worker
glue, the per-process hub, and the channel layer (`realtime.channels`). Views never touch a socket.

From any Django code or process: `realtime.notify(user, event, data)` reaches every socket of that
user that joined its topic `user:<id>`; `realtime.publish(topic, event, data)` every member of a topic;
`realtime.disconnect(user)` closes every socket of that user (4403: a ban, a logout everywhere).
(Imported on use: gunicorn imports this package before gevent patches the worker process.)
"""


def notify(user, event, data):
    from .channels import notify as notify_user

    notify_user(user, event, data)


def publish(topic, event, data):
    from .channels import publish as publish_to_topic

    publish_to_topic(topic, event, data)


def disconnect(user, detail="Your sessions were ended."):
    from .channels.revocation import disconnect as end_sockets

    end_sockets(user, detail=detail)
