"""`darkroom demo`: the whole path end to end on a private embedded broker.

Writes the real sample photos (and a few corrupt ones), starts a broker of its own on a free
port, publishes every photo, reads the uploads topic back and prints what arrived, then stops
the broker. Ctrl-C (or SIGTERM) at any point still stops the broker: no process is left behind.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import typer
from rich.table import Table

from streams.broker import BrokerError, EmbeddedBroker, private_broker_settings
from streams.cli.common import AppState, ExitCode, console, fail, state
from streams.cli.publish import send_with_progress
from streams.cli.render import summary
from streams.contracts.schemas import EventType
from streams.kafka.topics import ensure_topics, project_topics
from streams.publish import collect
from streams.samples import SamplesUnavailableError, write_demo_set
from streams.tail import tail


def demo(
    ctx: typer.Context,
    workdir: Path = typer.Option(Path(".darkroom/demo"), help="Where photos, blobs and logs go."),
) -> None:
    """Run the demo end to end on a private embedded broker and print the results."""
    base = state(ctx).settings
    settings = private_broker_settings(base, workdir / "broker")
    blobs = settings.blobs.model_copy(update={"root": workdir / "blobs"})
    settings = settings.model_copy(update={"blobs": blobs})
    app = AppState(settings)
    started = time.monotonic()

    console.rule("[bold]Darkroom demo")
    try:
        samples = write_demo_set(workdir / "photos")
    except SamplesUnavailableError as exc:
        fail(str(exc))
    console.print(f"1. wrote {len(samples)} sample photos to {workdir / 'photos'}")

    broker = EmbeddedBroker(settings)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = broker.start()
        ensure_topics(settings, project_topics(settings))
        console.print(f"2. started the embedded broker on {status.bootstrap} (pid {status.pid})")
        files, problems = collect([str(workdir / "photos")])
        if problems:
            fail(f"sample set has unpublishable files: {problems}", ExitCode.FAILED)
        console.print(
            "3. publishing (corrupt files are published too: they must end as dead "
            "letters, not vanish)"
        )
        report = send_with_progress(settings, app.codec, files, user=None, inline=False)
        console.print(f"4. reading {settings.topics.uploaded} back from the beginning")
        _show_uploads(app, expected=len(report.delivered))
        console.print(
            "[yellow]The worker that enriches these uploads (labels, faces, "
            "moderation, OCR, dead letters) is not built yet; see the README.[/]"
        )
    except BrokerError as exc:
        fail(str(exc), ExitCode.FAILED)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    finally:
        broker.stop()
        signal.signal(signal.SIGTERM, previous)
        console.print(f"broker stopped; demo took {time.monotonic() - started:.1f} s")


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _show_uploads(app: AppState, expected: int) -> None:
    table = Table(title=f"{app.settings.topics.uploaded}")
    columns = ["user", "file", "type", "bytes", "photo"]
    for column in ["partition/offset", *columns]:
        table.add_column(column, no_wrap=True)
    count = 0
    for message in tail(
        app.settings,
        app.codec,
        app.settings.topics.uploaded,
        from_beginning=True,
        max_messages=expected,
        idle_timeout_s=10,
    ):
        count += 1
        if message.event is None:
            table.add_row(f"{message.partition}/{message.offset}", f"undecodable: {message.error}")
            continue
        cells = summary(EventType.PHOTO_UPLOADED, message.event.record)
        cells["file"] = message.event.record["filename"] or "-"
        table.add_row(f"{message.partition}/{message.offset}", *[cells[c] for c in columns])
    console.print(table)
    if count != expected:
        fail(f"read {count} uploads back, expected {expected}", ExitCode.FAILED)
