"""Programs that some tests start for real, found on this machine or a clear reason why not.

pgbouncer and redis-server (which also runs as a sentinel) are Debian
packages that `.ci/run` installs. Without them a test is skipped on a
developer machine, naming the package to install, and fails in CI (CI=true),
where a skip would hide a setup that no longer works.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Debian puts pgbouncer in /usr/sbin, which is not on every user's PATH.
_SYSTEM_DIRECTORIES = ("/usr/sbin", "/usr/local/sbin")


def program(name: str, *, package: str) -> str:
    """The path of `name`; skips the test (fails it under CI=true) when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _SYSTEM_DIRECTORIES:
        if os.access(Path(directory) / name, os.X_OK):
            return str(Path(directory) / name)
    why = f"{name} is not installed (apt-get install {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)
