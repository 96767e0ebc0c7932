"""Production settings, read the way a deployment reads them: in a fresh process, from the environment."""

import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

REQUIRED = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "BEHIND_TLS_PROXY")


def manage(*args, **env):
    """`manage.py ARGS` with DEBUG=0 and only the given production variables set."""
    base = {name: value for name, value in os.environ.items() if name not in REQUIRED}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, capture_output=True,
                          text=True, timeout=60, env={**base, "DEBUG": "0", **env})


class ProductionSettingsTests(SimpleTestCase):
    def test_without_secret_key_the_project_refuses_to_start(self):
        result = manage("check", ALLOWED_HOSTS="example.com")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off", result.stderr)

    def test_without_allowed_hosts_the_project_refuses_to_start(self):
        result = manage("check", SECRET_KEY="s" * 50)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured: ALLOWED_HOSTS must be set when DEBUG is off", result.stderr)

    def test_with_both_the_checks_pass(self):
        result = manage("check", SECRET_KEY="s" * 50, ALLOWED_HOSTS="example.com")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("no issues", result.stdout)

    def test_behind_tls_proxy_trusts_forwarded_proto_and_keeps_cookies_on_https(self):
        show = ("from django.conf import settings as s; "
                "print(s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)")
        result = manage("shell", "-c", show, SECRET_KEY="s" * 50, ALLOWED_HOSTS="example.com", BEHIND_TLS_PROXY="1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[-1], "('HTTP_X_FORWARDED_PROTO', 'https') True True")
