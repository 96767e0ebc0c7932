"""The shipped nginx site in front of the real system, deployed as docs/deployment.md says.

collectstatic, `python -m deploy.nginx_conf` on deploy/nginx.conf, gunicorn with
deploy/gunicorn_http.py for pages, two websocket workers with deploy/gunicorn_ws.py, one Redis,
all with production settings (DEBUG=0, BEHIND_TLS_PROXY=1) on free loopback ports. One nginx
serves plain http; a second one renders the same file with TLS and a throwaway certificate.
"""

import http.client
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import websocket as websocket_client
from django.conf import settings
from django.test import SimpleTestCase, TransactionTestCase
from selenium.webdriver.common.by import By

from deploy.nginx_conf import TEMPLATE, render
from django.contrib.auth.models import User
from realtime.testing import (ChannelClient, ClientsMixin, RedisServer, WorkerProcess, bearer_offer, database_url,
                              free_port, require_binary, wait_until)
from tests.browser import by_testid, start_browser, text_of, wait_for
from tests.servers import NginxServer, PageServer

PRODUCTION_ENV = {"DEBUG": "0", "SECRET_KEY": "nginx-tests-not-secret-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1",
                  "BEHIND_TLS_PROXY": "1"}
MIB = 1024 * 1024


def manage(*args, env=None):
    """`manage.py ARGS` in its own process, with production settings; fails loudly."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, capture_output=True,
                            text=True, timeout=120, env={**os.environ, **PRODUCTION_ENV, **(env or {})})
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def render_site(*args):
    """The site as a deployer renders it: `python -m deploy.nginx_conf ARGS`."""
    result = subprocess.run([sys.executable, "-m", "deploy.nginx_conf", *args], cwd=settings.BASE_DIR,
                            capture_output=True, text=True, timeout=30)
    if result.returncode:
        raise RuntimeError(f"deploy.nginx_conf failed:\n{result.stderr}")
    return result.stdout


def self_signed_certificate(directory):
    """A certificate for 127.0.0.1, valid for a day, and its key: (cert path, key path)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class SiteTemplateTests(SimpleTestCase):
    """The renderer: every placeholder filled, TLS all or nothing."""

    def test_plain_site_has_no_placeholder_or_tls_line_left(self):
        site = render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001", "127.0.0.1:8002"], "/srv/static")
        active = [line for line in site.splitlines() if not line.lstrip().startswith("#")]
        self.assertFalse([line for line in active if "{{" in line])
        self.assertNotIn("ssl", "\n".join(active))
        self.assertIn("    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n", site)

    def test_routing_is_a_map_on_the_upgrade_header_not_if_and_rewrite(self):
        template = TEMPLATE.read_text()
        self.assertIn('map "$request_method:$http_upgrade" $realtime_upstream', template)
        active = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
        self.assertNotIn("rewrite", active)
        self.assertNotIn("if (", active)

    def test_partial_tls_or_unsafe_values_are_refused(self):
        with self.assertRaisesMessage(ValueError, "TLS needs all three"):
            render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001"], "/srv/static", tls_listen="443")
        with self.assertRaisesMessage(ValueError, "websockets"):
            render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001; include /etc/passwd"], "/srv/static")
        with self.assertRaisesMessage(ValueError, "at least one"):
            render("80", ["127.0.0.1:8000"], [], "/srv/static")

    def test_websocket_limits_have_defaults_and_refuse_what_nginx_would_not_take(self):
        site = render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001"], "/srv/static")
        self.assertIn("limit_conn realtime_websocket_connections 100;", site)
        self.assertIn("zone=realtime_websocket_upgrades:10m rate=10r/s;", site)
        self.assertIn("limit_req zone=realtime_websocket_upgrades burst=40 nodelay;", site)
        site = render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001"], "/srv/static", ws_connections=5,
                      ws_rate="30r/m", ws_burst=2)
        self.assertIn("limit_conn realtime_websocket_connections 5;", site)
        self.assertIn("rate=30r/m;", site)
        for options, message in (({"ws_connections": 0}, "ws_connections: 0"), ({"ws_burst": "2; deny"}, "ws_burst"),
                                 ({"ws_rate": "10"}, "not a rate"), ({"ws_rate": "10r/h"}, "not a rate")):
            with self.subTest(options=options), self.assertRaisesMessage(ValueError, message):
                render("80", ["127.0.0.1:8000"], ["127.0.0.1:8001"], "/srv/static", **options)


class NginxDeploymentTests(ClientsMixin, TransactionTestCase):
    """One nginx port in front of pages, two websocket workers and Redis, as deployed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for binary in ("nginx", "redis-server", "openssl"):
            require_binary(binary)
        cls.static_root = Path(tempfile.mkdtemp(prefix="static-"))
        cls.static_root.chmod(0o755)  # nginx's workers may run as another user
        cls.addClassCleanup(shutil.rmtree, cls.static_root, ignore_errors=True)
        manage("collectstatic", "--noinput", env={"STATIC_ROOT": str(cls.static_root)})

        cls.redis = cls.start(RedisServer())
        cls.pages = cls.start(PageServer({**PRODUCTION_ENV, "REDIS_URL": cls.redis.url}))
        cls.workers = [cls.start(WorkerProcess(redis_url=cls.redis.url, env=PRODUCTION_ENV)) for _ in range(2)]
        upstreams = ["--static-root", str(cls.static_root), "--pages", f"127.0.0.1:{cls.pages.port}",
                     "--websockets", *(f"127.0.0.1:{worker.port}" for worker in cls.workers)]
        cls.nginx = cls.start(NginxServer(lambda nginx: render_site("--listen", f"127.0.0.1:{nginx.port}", *upstreams)))

        # The per-address limits, each small in a site of its own (the defaults are far above a test's needs).
        cls.few_sockets_nginx = cls.start(NginxServer(lambda nginx: render_site(
            "--listen", f"127.0.0.1:{nginx.port}", "--ws-connections", "2", *upstreams)))
        cls.slow_upgrades_nginx = cls.start(NginxServer(lambda nginx: render_site(
            "--listen", f"127.0.0.1:{nginx.port}", "--ws-rate", "1r/m", "--ws-burst", "2", *upstreams)))

        cls.tls_port = free_port()
        tls_directory = Path(tempfile.mkdtemp(prefix="tls-"))
        cls.addClassCleanup(shutil.rmtree, tls_directory, ignore_errors=True)
        cls.certificate, key = self_signed_certificate(tls_directory)
        cls.tls_nginx = cls.start(NginxServer(lambda nginx: render_site(
            "--listen", f"127.0.0.1:{nginx.port}", "--tls-listen", f"127.0.0.1:{cls.tls_port}",
            "--certificate", str(cls.certificate), "--certificate-key", str(key), *upstreams)))

    @classmethod
    def start(cls, server):
        cls.addClassCleanup(server.stop)
        return server.start()

    def connect(self, url, **options):
        return self.open_client(url, **options)

    def get(self, path, headers=None, nginx=None):
        """(status, headers, body) of a GET through nginx; AssertionError if none comes in time."""
        response = (nginx or self.nginx).http_get(path, headers, timeout=10)
        self.assertIsNotNone(response, f"no answer from nginx for {path}")
        return response

    def ws_url(self, path):
        return f"ws://127.0.0.1:{self.nginx.port}{path}"

    def test_the_rendered_shipped_site_passes_nginx_t(self):
        for nginx in (self.nginx, self.tls_nginx):
            result = nginx.check()
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("test is successful", result.stderr)

    def test_a_plain_get_of_chat_is_the_page_from_the_page_server(self):
        status, headers, body = self.get("/chat/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        # Same origin, through nginx's port: the browser needs nothing else.
        self.assertIn(f'data-url="ws://127.0.0.1:{self.nginx.port}/chat/lobby/"', body)
        wait_until(lambda: '"GET /chat/ HTTP/1.1" 200' in self.pages.log(), message="the page server's log line")

    def test_a_websocket_to_the_same_path_chats_and_lands_on_both_workers(self):
        clients = []
        for number in range(4):
            client = self.connect(self.ws_url(f"/chat/?probe=spread-{number}"))
            client.receive_event("welcome")
            clients.append(client)
        clients[0].send_json("message", {"text": "through nginx"})
        for client in clients:
            self.assertEqual(client.receive_event("message")["text"], "through nginx")
        for client in clients:
            client.close()
        # A worker logs a socket's 101 when it ends: every probe in one log or the other, both logs used.
        probes = [f"/chat/?probe=spread-{number} HTTP/1.1\" 101" for number in range(4)]
        wait_until(lambda: all(any(p in w.log() for w in self.workers) for p in probes), message="all 101 lines")
        for worker in self.workers:
            self.assertTrue(any(probe in worker.log() for probe in probes), f"no socket on worker {worker.port}")

    def test_a_token_given_in_the_subprotocol_is_in_no_access_log(self):
        ann = User.objects.create_user("ann")
        token = manage("realtime_token", "ann", env={"DATABASE_URL": database_url()}).strip()
        client = ChannelClient(self.ws_url("/socket/?probe=token"), token=token)
        self.clients.append(client)
        self.assertEqual(client.join(f"user:{ann.pk}")["status"], "ok")  # the worker took it as ann's
        client.close()
        # A socket is logged when it ends, by nginx and by the worker that had it.
        logged = '/socket/?probe=token HTTP/1.1" 101'
        wait_until(lambda: logged in self.nginx.access_log() and any(logged in w.log() for w in self.workers),
                   message="the socket's lines in nginx's and the worker's access logs")
        logs = self.nginx.access_log() + "".join(worker.log() for worker in self.workers)
        for secret in (token, bearer_offer(token), token[:24]):
            self.assertNotIn(secret, logs)

    def request(self, method, path, headers, nginx=None):
        """(status, body) of any request through nginx."""
        conn = http.client.HTTPConnection("127.0.0.1", (nginx or self.nginx).port, timeout=10)
        self.addCleanup(conn.close)
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")

    def test_the_workers_health_and_metrics_are_not_served_to_the_outside(self):
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        for method in ("GET", "POST"):
            for headers in ({}, upgrade):
                for path in ("/metrics", "/healthz", "/%6detrics", "/metrics?x=1"):
                    with self.subTest(method=method, upgrade=bool(headers), path=path):
                        status, body = self.request(method, path, headers)
                        self.assertEqual(status, 403)
                        self.assertNotIn("realtime_", body)
                        self.assertNotIn("broker", body)
        # Still there for the host's monitoring, on the worker's own port.
        self.assertEqual(self.workers[0].http_get("/healthz")[0], 200)

    def test_only_a_get_upgrade_reaches_the_websocket_workers(self):
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        status, _ = self.request("POST", "/echo/?probe=post-upgrade", {**upgrade, "Content-Length": "0"})
        self.assertEqual(status, 403)  # Django's CSRF check on the page server: a POST without a token
        wait_until(lambda: "POST /echo/?probe=post-upgrade" in self.pages.log(), message="the page server's log line")
        for worker in self.workers:
            self.assertNotIn("post-upgrade", worker.log())

    def test_one_address_gets_503_past_its_open_sockets_and_pages_still_load(self):
        url = f"ws://127.0.0.1:{self.few_sockets_nginx.port}/echo/"
        first = self.connect(url)
        self.connect(url)  # the second of two this nginx lets one address hold
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.connect(url)
        self.assertEqual(refused.exception.status_code, 503)
        self.assertEqual(self.get("/chat/", nginx=self.few_sockets_nginx)[0], 200)  # pages are not counted
        first.close()
        wait_until(lambda: self.upgrade_status(url) == 101, message="a socket once another closed")

    def test_one_address_gets_429_past_its_burst_of_new_sockets_and_pages_still_load(self):
        url = f"ws://127.0.0.1:{self.slow_upgrades_nginx.port}/echo/"
        statuses = [self.upgrade_status(url) for _ in range(5)]
        # One at the rate (1 a minute) plus a burst of two; the rest come too soon.
        self.assertEqual(statuses, [101, 101, 101, 429, 429])
        self.assertEqual(self.get("/chat/", nginx=self.slow_upgrades_nginx)[0], 200)

    def upgrade_status(self, url):
        """101 once a WebSocket opened (it is closed again), or the HTTP status that refused it."""
        try:
            websocket_client.create_connection(url, timeout=10).close()
            return 101
        except websocket_client.WebSocketBadStatusException as refused:
            return refused.status_code

    def test_the_old_internal_prefix_is_not_there(self):
        self.assertEqual(self.get("/__ws__/chat/")[0], 404)
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.connect(self.ws_url("/__ws__/chat/"))
        self.assertEqual(refused.exception.status_code, 404)

    def test_static_files_come_from_nginx_and_never_reach_django(self):
        status, headers, body = self.get("/static/chat/chat.js")
        self.assertEqual(status, 200)
        self.assertEqual(body, (self.static_root / "chat" / "chat.js").read_text())
        self.assertEqual(headers["Content-Type"], "application/javascript")
        self.assertEqual(self.get("/static/chat/missing.js")[0], 404)
        wait_until(lambda: "/static/chat/missing.js" in self.nginx.access_log(), message="nginx's log line")
        self.assertNotIn("/static/", self.pages.log())

    def test_forwarded_headers_are_set_by_nginx_and_https_cannot_be_claimed(self):
        status, _, body = self.get("/chat/?forwarded", headers={
            "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(status, 200)
        self.assertIn(f'"ws://127.0.0.1:{self.nginx.port}/chat/lobby/"', body)
        self.assertNotIn("wss://", body)
        # nginx appends the address it saw; gunicorn_http.py logs the whole chain.
        wait_until(lambda: '"203.0.113.9, 127.0.0.1"' in self.pages.log(), message="X-Forwarded-For in the log")

    def test_with_tls_pages_give_wss_urls_that_chat_and_plain_http_redirects(self):
        context = ssl.create_default_context(cafile=str(self.certificate))
        conn = http.client.HTTPSConnection("127.0.0.1", self.tls_port, timeout=10, context=context)
        conn.request("GET", "/chat/")
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        url = f"wss://127.0.0.1:{self.tls_port}/chat/lobby/"
        self.assertIn(f'data-url="{url}"', response.read().decode())
        client = self.connect(url, sslopt={"ca_certs": str(self.certificate)})
        self.assertEqual(client.receive_event("welcome")["room"], "lobby")
        status, headers, _ = self.get("/chat/", nginx=self.tls_nginx)
        self.assertEqual((status, headers["Location"]), (308, "https://127.0.0.1/chat/"))

    def test_a_one_mebibyte_echo_goes_through_nginx(self):
        client = self.connect(self.ws_url("/echo/"))
        text, data = "x" * MIB, bytes(range(256)) * (MIB // 256)
        client.send(text)
        self.assertEqual(client.receive(timeout=10), text)
        client.send(data)
        self.assertEqual(client.receive(timeout=10), data)

    def test_two_browsers_chat_through_nginx_alone(self):
        origin = f"http://127.0.0.1:{self.nginx.port}"
        browsers = []
        for _ in range(2):
            browser = start_browser()
            self.addCleanup(browser.quit)
            browser.get(f"{origin}/chat/")
            wait_for(browser, lambda d: text_of(d, "status") == "live", message="chat live")
            browsers.append(browser)
        ann, bob = browsers
        ann.find_element(*by_testid("message-input")).send_keys("hello through nginx")
        ann.find_element(*by_testid("send-button")).click()
        wait_for(bob, lambda d: "hello through nginx" in [
            m.find_element(By.CLASS_NAME, "text").text
            for m in d.find_elements(By.CSS_SELECTOR, '[data-testid="messages"] [data-testid="message"]')],
            message="ann's message at bob's")
        # One origin for everything: the page, its scripts and styles, and the socket.
        for browser in browsers:
            urls = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
                ".concat([document.querySelector('script[data-url]').dataset.url]);")
            self.assertTrue(urls)
            for url in urls:
                self.assertRegex(url, rf"^(http|ws)://127\.0\.0\.1:{self.nginx.port}/")
