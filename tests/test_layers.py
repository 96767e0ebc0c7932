"""The three floors of docs/architecture.md (Floors), checked on the imports of the code.

`realtime` imports nothing of this repository but itself; the applications (chat, demos, jobs) use
the layer's API for applications, never the worker's insides, and never the project; the project
(project/, websocket_urls.py, deploy/) puts them together.
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


def imports(package):
    """(file, imported module) for every absolute import in a package's Python files."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                yield from ((path.relative_to(ROOT), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                yield path.relative_to(ROOT), node.module


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

    def test_the_check_sees_the_imports_it_judges(self):
        self.assertIn("realtime.decorators", {module for _, module in imports("chat")})
        self.assertIn("django_websocket.wsgi", {module for _, module in imports(LAYER)})
