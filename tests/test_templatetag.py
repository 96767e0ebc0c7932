"""{% websocket_url %} in each WEBSOCKET_SERVER mode."""

from django.template import Context, Template
from django.test import RequestFactory, SimpleTestCase, override_settings


def render(request, route="echo"):
    template = Template("{% load websockets %}{% websocket_url '" + route + "' %}")
    return template.render(Context({"request": request}))


@override_settings(ALLOWED_HOSTS=["*"])
class WebSocketUrlTagTests(SimpleTestCase):
    factory = RequestFactory()

    @override_settings(WEBSOCKET_SERVER="")
    def test_empty_server_is_same_origin(self):
        self.assertEqual(render(self.factory.get("/", HTTP_HOST="example.com")), "ws://example.com/echo/")

    @override_settings(WEBSOCKET_SERVER="")
    def test_https_page_gets_wss(self):
        request = self.factory.get("/", HTTP_HOST="example.com", secure=True)
        self.assertEqual(render(request), "wss://example.com/echo/")

    @override_settings(WEBSOCKET_SERVER=":8001")
    def test_port_keeps_the_host_the_page_was_opened_with(self):
        for host, expected in [("localhost:8000", "ws://localhost:8001/ping/"),
                               ("127.0.0.1:8000", "ws://127.0.0.1:8001/ping/"),
                               ("devbox.lan:8000", "ws://devbox.lan:8001/ping/"),
                               ("[::1]:8000", "ws://[::1]:8001/ping/"),
                               ("devbox.lan", "ws://devbox.lan:8001/ping/")]:
            with self.subTest(host=host):
                self.assertEqual(render(self.factory.get("/", HTTP_HOST=host), "ping"), expected)

    @override_settings(WEBSOCKET_SERVER="wss://ws.example.com")
    def test_full_url_is_used_as_given(self):
        self.assertEqual(render(self.factory.get("/", HTTP_HOST="www.example.com")), "wss://ws.example.com/echo/")

    @override_settings(WEBSOCKET_SERVER="https://ws.example.com/sockets/")
    def test_http_scheme_and_path_prefix_are_translated(self):
        self.assertEqual(render(self.factory.get("/", HTTP_HOST="www.example.com")),
                         "wss://ws.example.com/sockets/echo/")

    @override_settings(WEBSOCKET_SERVER="", SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
    def test_tls_terminated_at_proxy_gives_wss(self):
        request = self.factory.get("/", HTTP_HOST="example.com", HTTP_X_FORWARDED_PROTO="https")
        self.assertEqual(render(request), "wss://example.com/echo/")


class RealtimeClientTagTests(SimpleTestCase):
    @override_settings(CLIENT_HEARTBEAT_INTERVAL=2.5, CLIENT_HEARTBEAT_TIMEOUT=1, CLIENT_HOLE_TIMEOUT=0.75,
                       CLIENT_RECONNECT_WINDOW=7)
    def test_script_tag_passes_the_heartbeat_hole_and_reconnect_settings_in_milliseconds(self):
        html = Template("{% load websockets %}{% realtime_client %}").render(Context())
        self.assertEqual(html, '<script src="/static/realtime/client.js" data-heartbeat-interval="2500" '
                               'data-heartbeat-timeout="1000" data-hole-timeout="750" '
                               'data-reconnect-window="7000"></script>')
