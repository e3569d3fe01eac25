"""`darkroom replay`: read back partitions by offset or time; copy, reprocess or export them."""

from __future__ import annotations

import uuid
from contextlib import closing
from pathlib import Path

import typer
from confluent_kafka import Consumer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from streams.cli.common import AppState, console, err_console, state
from streams.engine import Enricher
from streams.errors import OperationError
from streams.kafka.clients import make_consumer, make_producer, probe
from streams.replay.checkpoint import Checkpoint
from streams.replay.forgotten import read_forgotten
from streams.replay.positions import OffsetResolver, PartitionRange
from streams.replay.reprocess import ReprocessSink
from streams.replay.request import Mode, ReplayRequest
from streams.replay.runner import Replayer, ReplayInterruptedError, ReplaySummary
from streams.replay.sinks import CopySink, ExportSink, Sink
from streams.replay.targets import spelled, topic_types

BATCH = 32


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.0f}/s" if task.speed else "", style="progress.data.speed")


def replay(
    ctx: typer.Context,
    topic: str = typer.Option(..., "--topic", help="Topic to read (any Darkroom topic)."),
    partitions: str | None = typer.Option(None, help="e.g. 0,2-5 (default: all)."),
    from_offset: int | None = typer.Option(None, help="Start at this offset (each partition)."),
    from_time: str | None = typer.Option(None, help="Start at this time: ISO-8601 or -2h, -1d."),
    from_beginning: bool = typer.Option(False, help="Start at the oldest offset (the default)."),
    to_offset: int | None = typer.Option(None, help="Stop before this offset."),
    to_time: str | None = typer.Option(None, help="Stop before records of this time."),
    until_end: bool = typer.Option(False, help="Stop at the end as of the start (the default)."),
    user: str | None = typer.Option(None, help="Only this user's events."),
    photo: str | None = typer.Option(None, help="Only this photo's events."),
    reason: str | None = typer.Option(None, help="Only dead letters with this reason."),
    limit: int | None = typer.Option(None, min=1, help="Stop after this many selected events."),
    into: str | None = typer.Option(None, help="Copy into this topic (dead letters: originals)."),
    reprocess: bool = typer.Option(False, help="Run the engine on the selected uploads."),
    out: str | None = typer.Option(None, help="Export decoded events to FILE.jsonl, or - ."),
    force: bool = typer.Option(False, help="Enrich even photos done with the current models."),
    stale_models: bool = typer.Option(False, help="--reprocess only photos with old versions."),
    dry_run: bool = typer.Option(False, help="Count what would be replayed; read nothing."),
    rate: float | None = typer.Option(None, min=0.1, help="At most this many events per second."),
    resume: bool = typer.Option(False, help="Continue the same replay after a crash or Ctrl-C."),
    checkpoint: Path | None = typer.Option(None, help="Checkpoint file (default: derived)."),
    foreign: bool = typer.Option(
        False, help="--into names a topic that is not Darkroom's: copy without a type check."
    ),
) -> None:
    """Replay partitions: --into TOPIC, --reprocess, --out FILE, or --dry-run.

    Ranges are half-open: --to-offset and --to-time are not included, so an end equal to the
    start selects nothing (a valid, empty replay). Exit 2 for bad arguments (before anything is
    read), 3 when Kafka does not answer.
    """
    app = state(ctx)
    topics = app.settings.topics
    request = ReplayRequest.from_options(
        topic=topic,
        partitions=partitions,
        from_offset=from_offset,
        from_time=from_time,
        from_beginning=from_beginning,
        to_offset=to_offset,
        to_time=to_time,
        until_end=until_end,
        user=user,
        photo=photo,
        reason=reason,
        limit=limit,
        into=into,
        reprocess=reprocess,
        out=out,
        force=force,
        stale_models=stale_models,
        dry_run=dry_run,
        rate=rate,
        resume=resume,
        checkpoint=checkpoint,
        foreign=foreign,
        types=topic_types(topics),
    )
    _replay(app, request)


def _replay(app: AppState, request: ReplayRequest) -> None:
    metadata = probe(app.settings)
    chosen = request.partitions_of({n: len(t.partitions) for n, t in metadata.topics.items()})
    with closing(make_consumer(app.settings)) as consumer:
        resolver = OffsetResolver(consumer, request.topic)
        if request.resume:
            saved = Checkpoint.load(request)
            ranges = saved.partition_ranges(chosen)
        else:
            ranges = [resolver.resolve(p, request.start, request.end) for p in chosen]
            saved = Checkpoint.new(request, uuid.uuid4().hex[:12], ranges)
        if resolver.fallbacks:
            err_console.print(
                f"note: the broker's offsets_for_times answer was wrong "
                f"{resolver.fallbacks} time(s); used a binary search on timestamps"
            )
        if request.dry_run:
            _print_plan(request.topic, ranges)
            return
        saved.begin()  # before the sink is made: --out is not truncated for a bad --checkpoint
        sink = _make_sink(app, request, saved.replay_id)
        if request.resume:
            for partition, through in sink.written_through().items():
                saved.next_offsets[partition] = max(
                    saved.next_offsets.get(partition, 0), through + 1
                )
        saved.save()
        summary = _run(app, consumer, sink, request, ranges, saved)
    _print_summary(request.topic, summary, sink, saved.path)
    if sink.counts.refused:
        assert request.into_type is not None  # only a checked copy refuses anything
        raise OperationError(
            f"refused {sink.counts.refused} selected event(s) that are not "
            f"{spelled(request.into_type)} events, what {request.into} carries: they were not "
            "written"
        )


def _make_sink(app: AppState, request: ReplayRequest, replay_id: str) -> Sink:
    settings, topic = app.settings, request.topic
    if request.mode is Mode.INTO:
        assert request.into is not None
        return CopySink(
            settings,
            app.codec,
            make_producer(settings),
            request.into,
            replay_id,
            topic,
            request.force,
            request.into_type,
            read_forgotten(settings, app.codec),
        )
    if request.mode is Mode.REPROCESS:
        return ReprocessSink(
            settings,
            app.codec,
            make_producer(settings),
            Enricher.from_settings(settings),
            replay_id,
            topic,
            force=request.force,
            stale_only=request.stale_models,
            batch_size=settings.engine.max_batch,
        )
    assert request.out is not None
    return ExportSink(request.out, request.resume)


def _run(
    app: AppState,
    consumer: Consumer,
    sink: Sink,
    request: ReplayRequest,
    ranges: list[PartitionRange],
    saved: Checkpoint,
) -> ReplaySummary:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    tasks = {
        r.partition: progress.add_task(f"{request.topic}/{r.partition}", total=max(r.count, 1))
        for r in ranges
    }
    replayer = Replayer(
        consumer=consumer,
        codec=app.codec,
        sink=sink,
        topic=request.topic,
        ranges=ranges,
        checkpoint=saved,
        filters=request.filters,
        limit=request.limit,
        rate=request.rate,
        batch=BATCH,
        on_progress=lambda p, n: progress.update(tasks[p], completed=n),
    )
    try:
        with progress:
            summary = replayer.run()
    except KeyboardInterrupt:
        sink.flush()  # raises if the outputs are not all written: then the checkpoint stays
        saved.save()
        raise ReplayInterruptedError(
            f"interrupted; continue with the same arguments and --resume (checkpoint {saved.path})"
        ) from None
    finally:
        sink.close()
    return summary


def _print_plan(topic: str, ranges: list[PartitionRange]) -> None:
    table = Table(title=f"dry run: {topic} (counts before --user/--photo/--reason filters)")
    for column in ("partition", "from", "to (excl.)", "events"):
        table.add_column(column, justify="right")
    for r in ranges:
        table.add_row(str(r.partition), str(r.start), str(r.end), str(r.count))
    table.add_row("all", "", "", str(sum(r.count for r in ranges)), style="bold")
    console.print(table)


def _print_summary(topic: str, summary: ReplaySummary, sink: Sink, path: Path) -> None:
    table = Table(title=f"replay {summary.replay_id} of {topic}")
    for column in ("partition", "range", "read", "selected"):
        table.add_column(column, justify="right")
    for part in summary.partitions:
        table.add_row(
            str(part.partition),
            f"{part.range.start}-{part.range.end}",
            str(part.read),
            str(part.selected),
        )
    console.print(table)
    console.print(
        f"written {sink.counts.written}, skipped {sink.counts.skipped}"
        + (f", forgotten {sink.counts.forgotten}" if sink.counts.forgotten else "")
        + f" in "
        f"{summary.seconds:.1f} s"
        + (" (limit reached)" if summary.limit_reached else "")
        + f"; checkpoint {path}",
        highlight=False,
    )
