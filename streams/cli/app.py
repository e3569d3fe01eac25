"""`darkroom`: the root command, its global options, and the sub-commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from typer.core import TyperGroup

from streams import __version__
from streams.cli import (
    acls,
    broker,
    config_cmd,
    demo,
    experiments,
    forget,
    models,
    publish,
    replay,
    review,
    tail,
    topics,
    worker,
)
from streams.cli.common import AppState, fail
from streams.config import CONFIG_FILE_ENV, load_settings
from streams.errors import DarkroomError
from streams.logs import configure_logging


class DarkroomGroup(TyperGroup):
    """The one place an expected failure becomes a message and an exit code: every
    DarkroomError a command lets escape is printed as one line on stderr and ends the command
    with its family's exit code (streams/errors.py); anything else is a bug and keeps its
    traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DarkroomError as exc:
            fail(str(exc), exc.exit_code)


app = typer.Typer(
    cls=DarkroomGroup,
    name="darkroom",
    help="Darkroom: Kafka stream processor that enriches photo uploads with computer vision.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
app.add_typer(broker.app, name="broker")
app.add_typer(models.app, name="models")
app.add_typer(experiments.app, name="experiments")
app.add_typer(topics.app, name="topics")
app.command("publish")(publish.publish)
app.command("tail")(tail.tail)
app.command("config")(config_cmd.config)
app.command("demo")(demo.demo)
app.command("worker")(worker.worker)
app.command("replay")(replay.replay)
app.command("acls")(acls.acls)
app.command("forget")(forget.forget)
app.command("review")(review.review)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"darkroom {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help=f"TOML config file (default: ${CONFIG_FILE_ENV} or ./darkroom.toml)",
        exists=True,
        dir_okay=False,
    ),
    log_level: str | None = typer.Option(
        None,
        "--log-level",
        help="DEBUG, INFO, WARNING or ERROR (default: from config, INFO)",
        case_sensitive=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Load the settings once for whichever sub-command runs."""
    if config is not None:
        os.environ[CONFIG_FILE_ENV] = str(config)
    try:
        overrides = {"log": {"level": log_level.upper()}} if log_level else {}
        settings = load_settings(**overrides)
    except (ValidationError, SettingsError) as exc:
        fail(f"invalid configuration:\n{exc}")
    configure_logging(settings.log.level, settings.log.format)
    ctx.obj = AppState(settings)


def main() -> None:
    """Console-script entry point."""
    app()
