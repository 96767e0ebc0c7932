"""The three floors of docs/architecture.md (Floors), checked on the imports of the code.

`realtime` imports nothing of this repository but itself; the applications (chat, demos, jobs) use
the layer's API for applications, never the worker's insides, and never the project; the project
(project/, websocket_urls.py, deploy/) puts them together. Inside the layer, brokers and presence
do not import each other: presence picks its store from what the broker interface declares.
"""

import ast
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

ROOT = Path(settings.BASE_DIR)
LAYER = "realtime"
APPS = ("chat", "demos", "jobs")
PROJECT = ("project", "websocket_urls", "deploy", "tests", "bench")
# What only the worker uses: an application never needs it (close codes are the exception's reason).
WORKER_INSIDES = ("realtime.server", "realtime.worker", "realtime.wsgi", "realtime.transport")
ALLOWED_INSIDES = ("realtime.transport.codes",)
BROKERS, PRESENCE = "realtime.fanout.brokers", "realtime.presence"
BROKER_INTERFACE = "realtime.fanout.brokers.base"


def imports(package):
    """(file, imported module) for every import in a package's Python files (in functions too),
    relative ones made absolute; `from x import y` counts as importing x and x.y."""
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        here = parts if parts[-1] == "__init__" else parts[:-1]  # the package the file is in
        here = [part for part in here if part != "__init__"]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                yield from ((path.relative_to(ROOT), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                yield path.relative_to(ROOT), module
                yield from ((path.relative_to(ROOT), f"{module}.{alias.name}") for alias in node.names)


def within(module, *prefixes):
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


class FloorTests(SimpleTestCase):
    def test_the_layer_imports_nothing_of_the_applications_or_the_project(self):
        found = [(str(path), module) for path, module in imports(LAYER) if within(module, *APPS, *PROJECT)]
        self.assertEqual(found, [])

    def test_applications_use_the_layer_s_api_and_never_the_project(self):
        found = [(str(path), module) for app in APPS for path, module in imports(app)
                 if within(module, *PROJECT) or (within(module, *WORKER_INSIDES)
                                                 and not within(module, *ALLOWED_INSIDES))]
        self.assertEqual(found, [])

    def test_brokers_never_import_presence(self):
        found = [(str(path), module) for path, module in imports("realtime/fanout/brokers") if within(module, PRESENCE)]
        self.assertEqual(found, [])

    def test_presence_imports_no_broker_but_the_interface(self):
        found = [(str(path), module) for path, module in imports("realtime/presence")
                 if within(module, BROKERS) and not within(module, BROKER_INTERFACE)]
        self.assertEqual(found, [])

    def test_the_check_sees_the_imports_it_judges(self):
        self.assertIn("realtime.decorators", {module for _, module in imports("chat")})
        self.assertIn("django_websocket.wsgi", {module for _, module in imports(LAYER)})
        # Relative imports, made absolute: presence's use of the broker interface, the hub's of runtime.
        self.assertIn(BROKER_INTERFACE, {module for _, module in imports("realtime/presence")})
        self.assertIn("realtime.runtime.get_hub", {module for _, module in imports("realtime/fanout")})
