"""`darkroom config`: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from typing import Any

import typer
from pydantic import BaseModel, SecretStr
from rich.table import Table

from streams.cli.common import console, state
from streams.config import ENV_PREFIX, Settings, config_file_path

MASK = "********"
_SECRET_WORDS = ("password", "secret", "token", "auth", "key")


def config(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print every setting with its value and source (env, file or default)."""
    settings = state(ctx).settings
    file_path = config_file_path()
    file_values = _flatten(tomllib.loads(file_path.read_text())) if file_path.is_file() else {}
    rows = [
        (key, _show(key, value), _source(key, file_values), _env_name(key))
        for key, value in settings_items(settings)
    ]
    if as_json:
        console.print_json(json.dumps({k: {"value": v, "source": s} for k, v, s, _ in rows}))
        return
    table = Table(
        title=f"darkroom configuration (file: {file_path}"
        f"{'' if file_path.is_file() else ', not found'})"
    )
    for column in ("setting", "value", "source", "environment variable"):
        table.add_column(column)
    for key, value, source, env in rows:
        table.add_row(key, str(value), source, env)
    console.print(table)


def settings_items(settings: Settings) -> Iterator[tuple[str, Any]]:
    """(section.field, value) for every leaf setting."""
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        assert isinstance(section, BaseModel)
        for field_name in type(section).model_fields:
            yield f"{section_name}.{field_name}", getattr(section, field_name)


# settings whose values are paths of files holding secrets: the paths help, the files stay unread
_SECRET_PATHS = ("kafka.secret_files",)


def _show(key: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, dict) and key in _SECRET_PATHS:
        return {k: str(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: MASK if _is_secret(k) else v for k, v in value.items()}
    return value if isinstance(value, bool | int | float | type(None)) else str(value)


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _source(key: str, file_values: dict[str, Any]) -> str:
    if _env_name(key) in os.environ:
        return "env"
    if key in file_values:
        return "file"
    return "default"


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{name}": value
        for section, fields in data.items()
        if isinstance(fields, dict)
        for name, value in fields.items()
    }
