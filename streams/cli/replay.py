"""`darkroom replay`: read back partitions by offset or time; copy, reprocess or export them."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import typer
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

from streams.cli.common import AppState, ExitCode, console, err_console, fail, state
from streams.contracts.codec import RegistryError
from streams.engine import Enricher
from streams.kafka.clients import BrokerUnreachableError, make_consumer, make_producer, probe
from streams.models.repository import ModelNotBuiltError, ModelRepository
from streams.replay.checkpoint import Checkpoint
from streams.replay.positions import OffsetResolver, PartitionRange
from streams.replay.reprocess import ReprocessSink
from streams.replay.runner import Replayer, ReplaySummary
from streams.replay.selection import Filters, ReplayUsageError, bound, parse_partitions
from streams.replay.sinks import CopySink, ExportSink, Sink

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
) -> None:
    """Replay partitions: --into TOPIC, --reprocess, --out FILE, or --dry-run.

    Ranges are half-open: --to-offset and --to-time are not included. Exit 2 for bad arguments
    (before anything is read), 3 when Kafka does not answer.
    """
    app = state(ctx)
    args = {k: v for k, v in locals().items() if k not in ("ctx", "app", "checkpoint")}
    try:
        modes = [
            m for m, on in (("--into", into), ("--reprocess", reprocess), ("--out", out)) if on
        ]
        _check_modes(app, topic, modes, into, reprocess, out, force, stale_models, dry_run, resume)
        start = bound(
            from_offset,
            from_time,
            from_beginning,
            ("--from-offset", "--from-time", "--from-beginning"),
        )
        end = bound(to_offset, to_time, until_end, ("--to-offset", "--to-time", "--until-end"))
        metadata = probe(app.settings)
        if topic not in metadata.topics:
            raise ReplayUsageError(f"--topic {topic!r} does not exist")
        if into is not None and into not in metadata.topics:
            raise ReplayUsageError(f"--into {into!r} does not exist")
        chosen = parse_partitions(partitions, len(metadata.topics[topic].partitions))
        request = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in args.items()
            if k not in ("resume", "dry_run")
        }
        path = checkpoint or _default_checkpoint(request)
        consumer = make_consumer(app.settings)
        resolver = OffsetResolver(consumer, topic)
        if resume:
            saved = Checkpoint.load(path, request)
            ranges = [_range_from(saved, p) for p in chosen]
        else:
            ranges = [resolver.resolve(p, start, end) for p in chosen]
            saved = Checkpoint(
                path,
                uuid.uuid4().hex[:12],
                request,
                {r.partition: (r.start, r.end) for r in ranges},
            )
    except ReplayUsageError as exc:
        fail(str(exc))
    except BrokerUnreachableError as exc:
        fail(str(exc), ExitCode.UNREACHABLE)
    if resolver.fallbacks:
        err_console.print(
            f"note: the broker's offsets_for_times answer was wrong "
            f"{resolver.fallbacks} time(s); used a binary search on timestamps"
        )
    if dry_run:
        _print_plan(topic, ranges)
        return
    filters = Filters(user=user, photo=photo, reason=reason)
    try:
        sink = _make_sink(
            app, topic, saved.replay_id, into, reprocess, out, force, stale_models, resume
        )
    except (ModelNotBuiltError, RegistryError) as exc:
        fail(str(exc))
    if resume:
        for partition, through in sink.written_through().items():
            saved.next_offsets[partition] = max(saved.next_offsets.get(partition, 0), through + 1)
    saved.save()
    summary = _run(app, consumer, sink, topic, ranges, saved, filters, limit, rate)
    _print_summary(topic, summary, sink, saved.path)


def _check_modes(
    app: AppState,
    topic: str,
    modes: list[str],
    into: str | None,
    reprocess: bool,
    out: str | None,
    force: bool,
    stale_models: bool,
    dry_run: bool,
    resume: bool,
) -> None:
    if len(modes) > 1:
        raise ReplayUsageError(f"choose one of {', '.join(modes)}")
    if not modes and not dry_run:
        raise ReplayUsageError("say what to do: --into TOPIC, --reprocess, --out FILE or --dry-run")
    uploads, failed = app.settings.topics.uploaded, app.settings.topics.failed
    if reprocess and topic not in (uploads, failed):
        raise ReplayUsageError(f"--reprocess reads uploads: --topic {uploads} or {failed}")
    if stale_models and not reprocess:
        raise ReplayUsageError("--stale-models goes with --reprocess")
    if force and not (reprocess or into):
        raise ReplayUsageError("--force goes with --reprocess or --into")
    if resume and (dry_run or out == "-"):
        raise ReplayUsageError("--resume needs a replay that writes somewhere durable")


def _default_checkpoint(request: dict[str, Any]) -> Path:
    digest = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
    return Path(".darkroom/replay") / f"{request['topic']}-{digest}.json"


def _range_from(saved: Checkpoint, partition: int) -> PartitionRange:
    start, end = saved.ranges[partition]
    return PartitionRange(partition, start, end, start, end)


def _make_sink(
    app: AppState,
    topic: str,
    replay_id: str,
    into: str | None,
    reprocess: bool,
    out: str | None,
    force: bool,
    stale_models: bool,
    resume: bool,
) -> Sink:
    settings = app.settings
    if into is not None:
        return CopySink(settings, app.codec, make_producer(settings), into, replay_id, topic, force)
    if reprocess:
        repository = ModelRepository(settings.paths.models, settings.paths.model_cache)
        return ReprocessSink(
            settings,
            app.codec,
            make_producer(settings),
            Enricher(settings.engine, repository),
            replay_id,
            topic,
            force=force,
            stale_only=stale_models,
            batch_size=settings.engine.max_batch,
        )
    assert out is not None
    return ExportSink(out, resume)


def _run(
    app: AppState,
    consumer: Any,
    sink: Sink,
    topic: str,
    ranges: list[PartitionRange],
    saved: Checkpoint,
    filters: Filters,
    limit: int | None,
    rate: float | None,
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
        r.partition: progress.add_task(f"{topic}/{r.partition}", total=max(r.count, 1))
        for r in ranges
    }
    replayer = Replayer(
        consumer=consumer,
        codec=app.codec,
        sink=sink,
        topic=topic,
        ranges=ranges,
        checkpoint=saved,
        filters=filters,
        limit=limit,
        rate=rate,
        batch=BATCH,
        on_progress=lambda p, n: progress.update(tasks[p], completed=n),
    )
    try:
        with progress:
            summary = replayer.run()
    except KeyboardInterrupt:
        sink.flush()
        saved.save()
        fail(
            f"interrupted; continue with the same arguments and --resume (checkpoint {saved.path})",
            ExitCode.INTERRUPTED,
        )
    finally:
        sink.close()
        consumer.close()
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
        f"written {sink.counts.written}, skipped {sink.counts.skipped} in "
        f"{summary.seconds:.1f} s"
        + (" (limit reached)" if summary.limit_reached else "")
        + f"; checkpoint {path}",
        highlight=False,
    )
