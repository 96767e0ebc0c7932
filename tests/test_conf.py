"""realtime/conf.py is the one source of the layer's settings: the docs follow it, the environment is read by it."""

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings

from realtime import conf

DOCS = Path(settings.BASE_DIR) / "docs"


class DocsFollowConf(SimpleTestCase):
    def test_settings_table_is_the_output_of_conf(self):
        text = (DOCS / "settings.md").read_text()
        generated = re.search(r"<!-- generated: python -m realtime.conf -->\n(.*?)<!-- end generated -->", text, re.S)
        self.assertIsNotNone(generated, "docs/settings.md lost its generated table markers")
        self.assertEqual(generated.group(1), conf.markdown_table(),
                         "docs/settings.md is stale: paste the output of `python -m realtime.conf`")

    def test_limits_show_the_defaults_of_conf(self):
        shown = dict(re.findall(r"`(\w+)` \(([^)]*)\)", (DOCS / "limits.md").read_text()))
        layer = {name: text for name, text in shown.items() if name in conf.DEFAULTS}
        self.assertGreaterEqual(len(layer), 15, "docs/limits.md names fewer limits than it used to")
        for name, text in layer.items():
            with self.subTest(name):
                self.assertTrue(text.startswith(conf.SETTINGS[list(conf.DEFAULTS).index(name)].shown),
                                f"docs/limits.md shows {name} as ({text})")


class FromEnviron(SimpleTestCase):
    def test_values_are_typed_like_their_defaults_and_empty_is_unset(self):
        values = conf.from_environ({"WEBSOCKET_MAX_CONNECTIONS": "12", "WEBSOCKET_RATE_LIMIT": "0.5",
                                    "PRESENCE_TTL": "2", "REDIS_URL": "redis://127.0.0.1:1/0",
                                    "WEBSOCKET_SERVER": "", "UNRELATED": "x"})
        self.assertEqual(values, {"WEBSOCKET_MAX_CONNECTIONS": 12, "WEBSOCKET_RATE_LIMIT": 0.5,
                                  "PRESENCE_TTL": 2.0, "REDIS_URL": "redis://127.0.0.1:1/0"})
        self.assertIsInstance(values["PRESENCE_TTL"], float)

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
