"""A test's outside tool (promtool, docker-compose): `make tools` installs them with apt-get;
where one is missing the test is skipped, or, with CI=true, fails (CI must run every test)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skip (or under CI=true, fail) naming ``package`` when it is not
    installed."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install {package}, or make tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
