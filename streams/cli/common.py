"""What every command shares: consoles, exit codes, the loaded settings, clear failures."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from streams.config import Settings
from streams.contracts.codec import Codec, codec_from_settings
from streams.contracts.schemas import SchemaRepository
from streams.errors import ExitCode

__all__ = ["AppState", "ExitCode", "console", "err_console", "fail", "state"]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(int(code))


@dataclass
class AppState:
    """Settings for this invocation, and what is built from them on first use."""

    settings: Settings

    @cached_property
    def repository(self) -> SchemaRepository:
        """The schemas/ folder, loaded once."""
        return SchemaRepository(self.settings.paths.schemas)

    @cached_property
    def codec(self) -> Codec:
        """The configured wire format."""
        return codec_from_settings(self.settings, self.repository)


def state(ctx: typer.Context) -> AppState:
    """The AppState the root callback stored on the context."""
    obj = ctx.find_root().obj
    assert isinstance(obj, AppState), "root callback did not run"
    return obj
