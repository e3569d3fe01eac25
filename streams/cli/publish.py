"""`darkroom publish PATH...`: send photos as PhotoUploaded events."""

from __future__ import annotations

import typer
from confluent_kafka import KafkaError, KafkaException
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from streams.blobs import BlobStore, BlobWriter
from streams.cli.common import ExitCode, console, err_console, fail, state
from streams.config import Settings
from streams.contracts.codec import Codec
from streams.kafka.clients import make_producer, probe
from streams.kafka.refusals import missing_right
from streams.kafka.rights import require_topics
from streams.publish import (
    InvalidUserIdError,
    PhotoFile,
    Publisher,
    PublishReport,
    check_user_id,
    collect,
)

DELIVERY_TIMEOUT_S = 30.0


def publish(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Photo files, folders (recursive) or globs."),
    user: str | None = typer.Option(
        None, "--user", "-u", help="User id for every photo (default: each photo's folder name)."
    ),
    inline: bool = typer.Option(
        False, "--inline", help="Put photos up to blobs.inline_max_bytes inside the event."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Publish the valid photos even if some paths are not."
    ),
    to: str | None = typer.Option(
        None,
        "--to",
        help="Upload the photos to s3://bucket/prefix (a bucket in DARKROOM_BLOBS_S3_BUCKETS) "
        "instead of the blob root; an event is sent only after its photo is stored.",
    ),
) -> None:
    """Publish photos to the uploads topic and wait until the broker has every one.

    Every path is checked before anything is sent. Exit 0 when all were delivered, 1 when some
    were not, 2 for bad paths, 3 when Kafka does not answer.
    """
    app = state(ctx)
    settings = app.settings
    if user is not None:
        try:
            check_user_id(user)
        except InvalidUserIdError as exc:
            fail(f"--user: {exc}")
    files, problems = collect(paths)
    for problem in problems:
        err_console.print(f"[red]✗[/] {problem.argument}: {problem.message}", highlight=False)
    if problems and files and not skip_invalid:
        fail(
            f"{len(problems)} path(s) cannot be published; nothing was sent "
            "(use --skip-invalid to send the rest)"
        )
    if not files:
        fail("no photos to publish")
    writer = BlobStore.from_settings(settings).writer(to)  # UsageError: exit 2, nothing sent
    report = send_with_progress(settings, app.codec, files, writer, user=user, inline=inline)
    if report.failed:
        raise typer.Exit(int(ExitCode.FAILED))


def send_with_progress(
    settings: Settings,
    codec: Codec,
    files: list[PhotoFile],
    writer: BlobWriter,
    user: str | None,
    inline: bool,
) -> PublishReport:
    """Publish checked files with a progress bar and a summary; exits on unreachable Kafka."""
    metadata = probe(settings)  # BrokerUnreachableError: exit 3, through the CLI's handler
    topic = settings.topics.uploaded
    require_topics(
        settings, metadata, [topic], "`darkroom broker start` creates it for the local brokers"
    )
    publisher = Publisher(
        make_producer(settings, **{"message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)}),
        codec,
        writer,
        topic,
        settings.blobs.inline_max_bytes,
        delivery_timeout_s=DELIVERY_TIMEOUT_S + 5,
    )
    progress = Progress(
        TextColumn("[bold]publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} photos/s"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task("publish", total=len(files), rate=0.0)

        def done(_file: PhotoFile, _ok: bool) -> None:
            elapsed = progress.tasks[task].elapsed or 0.0
            completed = progress.tasks[task].completed + 1
            progress.update(task, advance=1, rate=completed / elapsed if elapsed else 0.0)

        try:
            report = publisher.publish(files, user=user, inline=inline, on_done=done)
        except KafkaException as exc:
            code = exc.args[0].code()
            if code not in (
                KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
            ):
                raise
            # an idempotent producer needs WRITE on a topic before it may send at all (Kafka
            # answers InitProducerId with CLUSTER_AUTHORIZATION_FAILED): nothing was sent
            raise missing_right(settings, "WRITE", "topic", topic) from None
        except KeyboardInterrupt as interrupt:
            progress.stop()
            _summarise(getattr(interrupt, "report", PublishReport()), topic)
            fail("interrupted", ExitCode.INTERRUPTED)
    _summarise(report, topic)
    return report


def _summarise(report: PublishReport, topic: str) -> None:
    for failure in report.failed:
        err_console.print(
            f"[red]✗ not delivered[/] {failure.file.path}: {failure.error}", highlight=False
        )
    inline = sum(d.inline for d in report.delivered)
    console.print(
        f"published {len(report.delivered)} photo(s) to {topic} in {report.seconds:.2f} s "
        f"({report.rate:.1f} photos/s"
        + (f", {inline} inline" if inline else "")
        + ")"
        + (f"; [red]{len(report.failed)} not delivered[/]" if report.failed else "")
    )
