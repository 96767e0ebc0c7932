"""`{% load websockets %}`: `{% websocket_url 'name' arg %}` gives the ws:// or wss:// URL of a route;
`{% realtime_client %}` makes the browser client importable and gives it the server's settings."""

import json

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, json_script
from django.utils.safestring import mark_safe

from .. import conf
from ..reverse import websocket_url as build_websocket_url

register = template.Library()

# The client's settings (milliseconds) and the setting (seconds) each comes from.
CLIENT_SETTINGS = {"heartbeatInterval": "CLIENT_HEARTBEAT_INTERVAL", "heartbeatTimeout": "CLIENT_HEARTBEAT_TIMEOUT",
                   "holeTimeout": "CLIENT_HOLE_TIMEOUT", "reconnectWindow": "CLIENT_RECONNECT_WINDOW"}
CLIENT_MODULE = "realtime/client/index.js"  # a copy of clients/js/src/ (the npm package)


@register.simple_tag(takes_context=True)
def websocket_url(context, name, *args, **kwargs):
    return build_websocket_url(name, args=args, kwargs=kwargs, request=context.get("request"))


def client_settings(outbox_max_age=None):
    """The settings the client reads from the page (clients/js/src/settings.js), in milliseconds;
    `outbox_max_age` (seconds) is how long outboxes keep trying: the server's nonce window."""
    settings = {key: round(conf.get(name) * 1000) for key, name in CLIENT_SETTINGS.items()}
    if outbox_max_age not in (None, ""):  # (a template variable a view did not set is "")
        settings["outboxMaxAge"] = round(float(outbox_max_age) * 1000)
    return settings


@register.simple_tag
def realtime_client(outbox_max_age=None):
    """An import map that names the client module `realtime` (page scripts, as modules,
    `import {Socket} from "realtime"`, as a bundled app imports the npm package), and the settings
    as JSON in #realtime-settings, which every Socket of the page starts from."""
    imports = json.dumps({"imports": {"realtime": static(CLIENT_MODULE)}})
    # As json_script escapes: nothing in it can close the element.
    imports = imports.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")
    return format_html('<script type="importmap">{}</script>\n{}', mark_safe(imports),
                       json_script(client_settings(outbox_max_age), "realtime-settings"))
