"""`{% load websockets %}{% websocket_url 'name' arg %}`: the ws:// or wss:// URL of a route."""

from django import template

from ..urls import websocket_url as build_websocket_url

register = template.Library()


@register.simple_tag(takes_context=True)
def websocket_url(context, name, *args, **kwargs):
    return build_websocket_url(name, args=args, kwargs=kwargs, request=context.get("request"))
