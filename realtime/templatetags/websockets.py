"""`{% load websockets %}`: `{% websocket_url 'name' arg %}` gives the ws:// or wss:// URL of a route;
`{% realtime_client %}` the <script> of the browser client, with its heartbeat settings."""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from .. import conf
from ..urls import websocket_url as build_websocket_url

register = template.Library()


@register.simple_tag(takes_context=True)
def websocket_url(context, name, *args, **kwargs):
    return build_websocket_url(name, args=args, kwargs=kwargs, request=context.get("request"))


@register.simple_tag
def realtime_client():
    """client.js, told CLIENT_HEARTBEAT_INTERVAL and CLIENT_HEARTBEAT_TIMEOUT (in ms)."""
    return format_html(
        '<script src="{}" data-heartbeat-interval="{}" data-heartbeat-timeout="{}"></script>',
        static("realtime/client.js"),
        round(conf.get("CLIENT_HEARTBEAT_INTERVAL") * 1000), round(conf.get("CLIENT_HEARTBEAT_TIMEOUT") * 1000))
