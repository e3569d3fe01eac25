"""What every command shares: consoles, exit codes, the loaded settings, clear failures."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import NoReturn

import typer
from rich.console import Console

from streams.config import Settings
from streams.contracts.codec import Codec, make_codec
from streams.contracts.schemas import SchemaRepository

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class ExitCode(IntEnum):
    """Exit statuses of every command (also in the README)."""

    OK = 0
    FAILED = 1  # the command ran but some work failed (e.g. a photo not delivered)
    USAGE = 2  # bad arguments or input (missing path, not an image, bad config)
    UNREACHABLE = 3  # Kafka (or the schema registry) did not answer
    INTERRUPTED = 130  # Ctrl-C


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
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
        auth = self.settings.kafka.schema_registry_auth
        return make_codec(
            self.repository,
            self.settings.kafka.schema_registry_url,
            auth.get_secret_value() if auth else None,
        )


def state(ctx: typer.Context) -> AppState:
    """The AppState the root callback stored on the context."""
    obj = ctx.find_root().obj
    assert isinstance(obj, AppState), "root callback did not run"
    return obj
