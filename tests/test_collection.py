"""`make test` collects every app's tests: pytest.ini's `testpaths` names each folder that holds a `tests/`."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_app_with_tests_is_in_testpaths():
    config = configparser.ConfigParser()
    config.read(ROOT / "pytest.ini")
    testpaths = set(config["pytest"]["testpaths"].split())
    apps_with_tests = {path.parent.parent.name for path in ROOT.glob("*/tests/__init__.py")}

    assert apps_with_tests - testpaths == set()
    assert "tests" in testpaths
