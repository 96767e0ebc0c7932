"""`{% load websockets %}`: `{% websocket_url 'name' arg %}` gives the ws:// or wss:// URL of a route;
`{% realtime_client %}` the <script> of the browser client, with its heartbeat and hole settings."""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from .. import conf
from ..reverse import websocket_url as build_websocket_url

register = template.Library()


@register.simple_tag(takes_context=True)
def websocket_url(context, name, *args, **kwargs):
    return build_websocket_url(name, args=args, kwargs=kwargs, request=context.get("request"))


@register.simple_tag
def realtime_client():
    """client.js, told CLIENT_HEARTBEAT_INTERVAL, CLIENT_HEARTBEAT_TIMEOUT, CLIENT_HOLE_TIMEOUT and
    CLIENT_RECONNECT_WINDOW (in ms)."""
    return format_html(
        '<script src="{}" data-heartbeat-interval="{}" data-heartbeat-timeout="{}" data-hole-timeout="{}" '
        'data-reconnect-window="{}"></script>',
        static("realtime/client.js"), *(round(conf.get(name) * 1000) for name in (
            "CLIENT_HEARTBEAT_INTERVAL", "CLIENT_HEARTBEAT_TIMEOUT", "CLIENT_HOLE_TIMEOUT", "CLIENT_RECONNECT_WINDOW")))
