"""`darkroom broker start|stop|status`: the embedded broker for local runs."""

from __future__ import annotations

import time

import typer

from streams.broker import EmbeddedBroker
from streams.cli.common import ExitCode, console, state
from streams.kafka.topics import ensure_topics, project_topics

app = typer.Typer(
    help="Run the embedded Kafka-protocol broker (tansu) on 127.0.0.1.", no_args_is_help=True
)


@app.command()
def start(ctx: typer.Context) -> None:
    """Start the broker (if not running) and create the project's topics."""
    settings = state(ctx).settings
    broker = EmbeddedBroker(settings)
    status = broker.start()
    created = ensure_topics(settings, project_topics(settings))
    verb = "started" if status.detail == "started" else "already running"
    console.print(
        f"broker {verb} on [bold]{status.bootstrap}[/] (pid {status.pid}); log: {status.log_file}"
    )
    if created:
        console.print(
            f"created topics: {', '.join(created)} ({settings.topics.partitions} partitions each)"
        )
    if settings.kafka.bootstrap != status.bootstrap:
        console.print(
            f"[yellow]note:[/] DARKROOM_KAFKA_BOOTSTRAP is {settings.kafka.bootstrap}; "
            f"set it to {status.bootstrap} to use this broker"
        )


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the broker that `darkroom broker start` started (and nothing else)."""
    broker = EmbeddedBroker(state(ctx).settings)
    stopped = broker.stop()
    console.print("broker stopped" if stopped else "no broker was running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the broker runs and answers; exit 1 if it does not."""
    broker = EmbeddedBroker(state(ctx).settings)
    current = broker.status()
    if not current.running:
        console.print(f"broker on {current.bootstrap}: {current.detail}")
        raise typer.Exit(int(ExitCode.FAILED))
    uptime = time.time() - (current.started_at or time.time())
    console.print(
        f"broker on [bold]{current.bootstrap}[/]: running, pid {current.pid}, "
        f"up {uptime:.0f} s, {current.detail}; log: {current.log_file}"
    )
