"""One registry of settings (realtime/conf.py, and each app's conf.py registering with it): the docs
follow it, the environment is read by it, the transport's limits take their defaults from it."""

import importlib
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings

from realtime import conf
from realtime.transport import Limits

ROOT = Path(settings.BASE_DIR)
DOCS = sorted((ROOT / "docs").glob("*.md"))


def app_conf_modules():
    """The conf modules of this repository's installed apps (each registers its settings on import)."""
    return [importlib.import_module(f"{app.name}.conf") for app in apps.get_app_configs()
            if Path(app.path).is_relative_to(ROOT) and (Path(app.path) / "conf.py").exists()]


class DocsFollowTheRegistry(SimpleTestCase):
    def test_every_doc_shows_the_tables_and_defaults_the_registry_writes(self):
        app_conf_modules()
        for path in DOCS:
            with self.subTest(str(path.relative_to(ROOT))):
                text = path.read_text()
                self.assertEqual(conf.document(text), text,
                                 f"{path.name} shows other defaults than the code: run `python -m realtime.conf "
                                 f"--write docs/*.md` (and check the diff)")

    def test_every_setting_of_the_layer_and_the_apps_has_its_row_in_docs_settings(self):
        modules = app_conf_modules()
        self.assertEqual({module.__name__ for module in modules}, {"realtime.conf", "realtime.api.conf", "chat.conf", "demos.conf", "jobs.conf"})
        tables = conf.GENERATED.findall((ROOT / "docs" / "settings.md").read_text())
        tabled = [row for *_, table, _ in tables for row in re.findall(r"^\| `(\w+)` \|", table, re.M)]
        self.assertEqual(sorted(tabled), sorted(conf.REGISTRY))

    def test_limits_shows_the_defaults_of_the_limits_it_names(self):
        shown = {name for name, _ in conf.SHOWN_DEFAULT.findall((ROOT / "docs" / "limits.md").read_text())}
        self.assertGreaterEqual(len(shown & set(conf.REGISTRY)), 20, "docs/limits.md names fewer limits than it used to")

    def test_a_wrong_default_in_a_doc_is_written_over_and_other_parentheses_are_left(self):
        text = ("a 503 with `Retry-After` up to `CLIENT_RECONNECT_WINDOW` (15 s) past `WEBSOCKET_MAX_CONNECTIONS` (5)\n"
                "`WS_TIMEOUT` (120 s), `REDIS_URL`, `WEBSOCKET_IDLE_TIMEOUT` (3600 s), 0 = off\n")
        self.assertEqual(conf.document(text),
                         "a 503 with `Retry-After` up to `CLIENT_RECONNECT_WINDOW` (5 s) past `WEBSOCKET_MAX_CONNECTIONS` (9000)\n"
                         "`WS_TIMEOUT` (120 s), `REDIS_URL`, `WEBSOCKET_IDLE_TIMEOUT` (3600 s), 0 = off\n")

    def test_a_stale_generated_table_is_written_anew(self):
        text = "before\n<!-- generated: python -m realtime.conf demos.conf -->\n| old |\n<!-- end generated -->\nafter\n"
        self.assertEqual(conf.document(text), "before\n<!-- generated: python -m realtime.conf demos.conf -->\n"
                         "| setting | default | meaning |\n|---|---|---|\n| `CLOCK_INTERVAL` | 1 s | how often the clock "
                         "(`/time/`) pushes the time; one ticker per worker process. |\n<!-- end generated -->\nafter\n")


class Registry(SimpleTestCase):
    def test_a_name_registered_twice_with_another_default_is_refused(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "setting JOB_USER_LIMIT is registered twice"):
            conf.register(conf.Setting("JOB_USER_LIMIT", 30, "30", "another app's idea of it"))
        self.assertEqual(conf.DEFAULTS["JOB_USER_LIMIT"], 3)

    def test_an_app_s_setting_left_unset_is_its_default_and_a_set_one_wins(self):
        from jobs import conf as jobs_conf

        with override_settings():
            if hasattr(settings, "JOB_USER_LIMIT"):
                del settings.JOB_USER_LIMIT
            self.assertEqual(jobs_conf.get("JOB_USER_LIMIT"), 3)  # an adopter's project defines none
        with override_settings(JOB_USER_LIMIT=7):
            self.assertEqual(jobs_conf.get("JOB_USER_LIMIT"), 7)

    def test_the_transport_limits_default_to_the_settings_defaults_and_follow_the_settings(self):
        self.assertEqual(Limits().max_message_size, conf.DEFAULTS["WEBSOCKET_MAX_MESSAGE_SIZE"])
        self.assertEqual(Limits(), Limits.from_settings())
        with override_settings(WEBSOCKET_RATE_LIMIT=7, WEBSOCKET_MAX_QUEUE_BYTES=1234):
            limits = Limits.from_settings()
        self.assertEqual((limits.rate, limits.max_queue_bytes, limits.burst), (7, 1234, conf.DEFAULTS["WEBSOCKET_RATE_BURST"]))


class FromEnviron(SimpleTestCase):
    def test_values_are_typed_like_their_defaults_and_empty_is_unset(self):
        values = conf.from_environ({"WEBSOCKET_MAX_CONNECTIONS": "12", "WEBSOCKET_RATE_LIMIT": "0.5",
                                    "PRESENCE_TTL": "2", "REDIS_URL": "redis://127.0.0.1:1/0",
                                    "WEBSOCKET_SERVER": "", "UNRELATED": "x",
                                    "JOB_QUEUE_LIMIT": "4", "CLOCK_INTERVAL": "1", "CHAT_NONCE_WINDOW": "60"})
        self.assertEqual(values, {"WEBSOCKET_MAX_CONNECTIONS": 12, "WEBSOCKET_RATE_LIMIT": 0.5,
                                  "PRESENCE_TTL": 2.0, "REDIS_URL": "redis://127.0.0.1:1/0",
                                  "JOB_QUEUE_LIMIT": 4, "CLOCK_INTERVAL": 1.0, "CHAT_NONCE_WINDOW": 60.0})
        self.assertIsInstance(values["PRESENCE_TTL"], float)
        self.assertIsInstance(values["CLOCK_INTERVAL"], float)

    def test_a_value_that_is_not_a_number_stops_the_start_naming_the_variable(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "WEBSOCKET_PING_INTERVAL='20s': expected a number"):
            conf.from_environ({"WEBSOCKET_PING_INTERVAL": "20s"})

    def test_a_project_that_sets_nothing_gets_the_defaults(self):
        with override_settings():
            for name in ("WEBSOCKET_URLCONF", "REDIS_URL"):
                if hasattr(settings, name):
                    delattr(settings, name)
            self.assertEqual(conf.get("WEBSOCKET_URLCONF"), "websocket_urls")
            self.assertEqual(conf.get("REDIS_URL"), "")
        with override_settings(WEBSOCKET_URLCONF="tests.websocket_urls"):
            self.assertEqual(conf.get("WEBSOCKET_URLCONF"), "tests.websocket_urls")
