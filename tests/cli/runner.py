"""Run `darkroom` in-process, as a user would type it."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from streams.cli.app import app


def darkroom(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects of `--json` output, one per line."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
