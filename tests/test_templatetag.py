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
    def test_the_page_gets_the_client_module_and_the_settings_in_milliseconds(self):
        html = Template("{% load websockets %}{% realtime_client outbox_max_age=60 %}").render(Context())
        self.assertEqual(html, '<script type="importmap">{"imports": {"realtime": "/static/realtime/client/index.js"}}'
                               '</script>\n<script id="realtime-settings" type="application/json">'
                               '{"heartbeatInterval": 2500, "heartbeatTimeout": 1000, "holeTimeout": 750, '
                               '"reconnectWindow": 7000, "outboxMaxAge": 60000}</script>')

    def test_without_an_outbox_age_the_client_keeps_its_own(self):
        html = Template("{% load websockets %}{% realtime_client %}").render(Context())
        self.assertNotIn("outboxMaxAge", html)
