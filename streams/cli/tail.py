"""`darkroom tail TOPIC`: print the events on a topic."""

from __future__ import annotations

import sys

import typer

from streams.cli.common import console, err_console, state
from streams.cli.render import header, row
from streams.contracts.rows import message_row, to_json_line
from streams.contracts.schemas import EventType
from streams.tail import TailedMessage
from streams.tail import tail as tail_topic


def tail(
    ctx: typer.Context,
    topic: str = typer.Argument(..., help="Topic to read, e.g. photos.uploaded."),
    from_beginning: bool = typer.Option(
        False, "--from-beginning", help="Start at the oldest event instead of the newest."
    ),
    max_events: int | None = typer.Option(None, "--max", "-n", min=1, help="Stop after N events."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.0, help="Stop after this many seconds without a new event."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Decode and print events of any Darkroom topic, without committing any offsets."""
    app = state(ctx)
    count = errors = 0
    headers_shown: set[EventType] = set()
    try:
        for message in tail_topic(
            app.settings,
            app.codec,
            topic,
            from_beginning=from_beginning,
            max_messages=max_events,
            idle_timeout_s=timeout,
        ):
            count += 1
            errors += message.error is not None
            if as_json:
                sys.stdout.write(_json(message) + "\n")
                sys.stdout.flush()
            else:
                _print_row(message, headers_shown)
    except KeyboardInterrupt:
        pass
    err_console.print(
        f"{count} event(s) from {topic}" + (f", {errors} undecodable" if errors else "")
    )


def _where(message: TailedMessage) -> str:
    return f"{message.partition}/{message.offset}"


def _json(message: TailedMessage) -> str:
    payload = message_row(
        message.topic, message.partition, message.offset, message.key, message.event
    )
    payload["timestamp_ms"] = message.timestamp_ms
    if message.event is not None:
        payload["writer_schema"] = message.event.writer_version
    else:
        payload["error"] = message.error
    return to_json_line(payload)


def _print_row(message: TailedMessage, headers_shown: set[EventType]) -> None:
    if message.event is None:
        console.print(
            f"{_where(message):<10}  [red]undecodable:[/] {message.error}", highlight=False
        )
        return
    event_type = message.event.event_type
    if event_type not in headers_shown:
        headers_shown.add(event_type)
        console.print(f"[bold]{header(event_type)}[/]", highlight=False)
    console.print(
        row(_where(message), event_type, message.event.record), highlight=False, markup=False
    )
