"""Run `darkroom` in-process, as a user would type it."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from streams.cli.app import app
from streams.cli.common import console


def darkroom(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI; stdout and stderr are kept apart. A COLUMNS in ``env`` sets the output's
    width: rich reads COLUMNS (and LINES) once, when the console is made at import, and a
    pytest-xdist worker imports it with COLUMNS=80 set (the demo's table then cut its text)."""
    columns = (env or {}).get("COLUMNS")
    saved = console._width, console._height
    if columns is not None:
        console._width, console._height = int(columns), None
    try:
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        console._width, console._height = saved


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects of `--json` output, one per line."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
