"""The browser client is the npm package's code (clients/js/): the static copy the pages load is the
same, and its default settings are the server's."""

import json
import re
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

from realtime.templatetags.websockets import client_settings

ROOT = Path(settings.BASE_DIR)
SOURCE = ROOT / "clients" / "js" / "src"
STATIC_COPY = ROOT / "realtime" / "static" / "realtime" / "client"


class ClientPackageTests(SimpleTestCase):
    def test_the_static_copy_is_the_package_s_source(self):
        source = {path.name: path.read_bytes() for path in SOURCE.glob("*.js")}
        copy = {path.name: path.read_bytes() for path in STATIC_COPY.glob("*.js")}
        self.assertTrue(source)
        self.assertEqual(sorted(copy), sorted(source), "run `npm run sync` in clients/js")
        for name in source:
            self.assertEqual(copy[name], source[name], f"{name} differs: run `npm run sync` in clients/js")

    def test_the_client_s_defaults_are_the_server_s(self):
        text = (SOURCE / "settings.js").read_text()
        defaults = json.loads(re.search(r"/\* defaults \*/(.*?)/\* end defaults \*/", text, re.S).group(1))
        self.assertEqual(defaults, client_settings())

    def test_the_package_has_no_runtime_dependencies_and_its_tests_run_under_node(self):
        manifest = json.loads((ROOT / "clients" / "js" / "package.json").read_text())
        self.assertNotIn("dependencies", manifest)
        self.assertIn("node --experimental-websocket --test", manifest["scripts"]["test"])
