"""The versions pyproject.toml promises are the ones CI tests: each Django of .ci/run, pinned in its
requirements file with everything else, is admitted by the package's dependencies and named in its
classifiers, and no other Django is."""

import re
import tomllib
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase
from packaging.requirements import Requirement

ROOT = Path(settings.BASE_DIR)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(path):
    """{name: version} of a requirements file, following its `-r` includes."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            found.update(pins(line[3:].strip()))
        elif line:
            requirement = Requirement(line)
            found[requirement.name.lower()] = str(requirement.specifier).removeprefix("==")
    return found


def tested_djangos():
    """{Django version: its requirements file}, as .ci/run runs `make test DJANGO=...`."""
    versions = re.search(r"for django in ([\d. ]+); do", (ROOT / ".ci" / "run").read_text())[1].split()
    return {version: "requirements.txt" if version == "5.2" else f"requirements-django{version}.txt"
            for version in versions}


class PromisedVersions(SimpleTestCase):
    def test_ci_tests_django_5_2_lts_and_6_1(self):
        self.assertEqual(list(tested_djangos()), ["5.2", "6.1"])

    def test_each_tested_django_and_its_pins_satisfy_the_package_s_dependencies(self):
        dependencies = {requirement.name.lower(): requirement
                        for requirement in map(Requirement, PYPROJECT["dependencies"])}
        for version, path in tested_djangos().items():
            pinned = pins(path)
            with self.subTest(path):
                self.assertTrue(pinned["django"].startswith(version + "."), pinned["django"])
                for name, requirement in dependencies.items():
                    self.assertIn(name, pinned)
                    self.assertTrue(requirement.specifier.contains(pinned[name]),
                                    f"{path} pins {name} {pinned[name]}, pyproject.toml asks {requirement}")

    def test_the_classifiers_name_the_tested_djangos_and_no_other(self):
        named = {classifier.rsplit(" :: ", 1)[1] for classifier in PYPROJECT["classifiers"]
                 if classifier.startswith("Framework :: Django :: ")}
        self.assertEqual(named, set(tested_djangos()))

    def test_an_untested_django_is_not_admitted(self):
        django = next(Requirement(d) for d in PYPROJECT["dependencies"] if d.lower().startswith("django>"))
        self.assertEqual([v for v in ("5.1.9", "5.2.19", "6.0.10", "6.1.3", "6.2") if django.specifier.contains(v)],
                         ["5.2.19", "6.1.3"])
