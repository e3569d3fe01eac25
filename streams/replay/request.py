"""One `darkroom replay` request: every option, checked together once, then passed down whole.

``ReplayRequest.from_options`` is the only way to build one, and it raises ReplayUsageError
(exit code 2) for any option or combination that cannot describe a replay, before the broker is
asked anything. What needs the broker's answer (do the topics and partitions exist, where do
the times fall) is checked next, still before anything is read: ``partitions_of`` here, the
rest by the OffsetResolver.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from streams.contracts.schemas import EventType
from streams.replay.selection import (
    Bound,
    Filters,
    ReplayUsageError,
    Spans,
    bound,
    expand_partitions,
    parse_partition_spec,
    shorten,
)
from streams.replay.targets import TopicTypes, into_type

PHOTO_UPLOADED, PHOTO_FAILED = EventType.PHOTO_UPLOADED, EventType.PHOTO_FAILED
CHECKPOINT_DIR = Path(".darkroom/replay")


class Mode(StrEnum):
    """Where the selected events go (a dry run has none, or ignores the one given)."""

    INTO = "--into"
    REPROCESS = "--reprocess"
    OUT = "--out"


@dataclass(frozen=True, kw_only=True)
class ReplayRequest:
    """What to read, what to do with it and how; immutable, and valid by construction."""

    topic: str
    partitions: Spans | None  # None: every partition
    start: Bound
    end: Bound
    filters: Filters
    limit: int | None
    mode: Mode | None  # None only with dry_run
    into: str | None
    into_type: EventType | None  # what every record copied --into must be (None: unchecked)
    out: str | None  # a file, or "-" for stdout
    force: bool
    stale_models: bool
    dry_run: bool
    rate: float | None
    resume: bool
    checkpoint: Path | None  # None: derived from the identity
    # The options that decide what is selected and written, as typed: a --resume must repeat
    # them, and they name the default checkpoint. Kept as given ("-2h", not the time it meant
    # at the first run) and with the keys checkpoints have always had, so old ones still match.
    options: tuple[tuple[str, Any], ...]

    @classmethod
    def from_options(
        cls,
        *,
        topic: str,
        partitions: str | None = None,
        from_offset: int | None = None,
        from_time: str | None = None,
        from_beginning: bool = False,
        to_offset: int | None = None,
        to_time: str | None = None,
        until_end: bool = False,
        user: str | None = None,
        photo: str | None = None,
        reason: str | None = None,
        limit: int | None = None,
        into: str | None = None,
        reprocess: bool = False,
        out: str | None = None,
        force: bool = False,
        stale_models: bool = False,
        dry_run: bool = False,
        rate: float | None = None,
        resume: bool = False,
        checkpoint: Path | None = None,
        foreign: bool = False,
        types: TopicTypes,
        now: datetime | None = None,
    ) -> ReplayRequest:
        """The request the CLI options describe; ReplayUsageError for any that do not go
        together. ``types``: Darkroom's topics and the event type each carries
        (streams/replay/targets.py); relative times count back from ``now`` (one instant for
        both ends)."""
        if into == "":
            raise ReplayUsageError("--into needs a topic")
        if out == "":
            raise ReplayUsageError("--out needs a file name (or - for stdout)")
        mode = _mode(into, reprocess, out, dry_run)
        uploads = [t for t, e in types.items() if e in (PHOTO_UPLOADED, PHOTO_FAILED)]
        if reprocess and topic not in uploads:
            raise ReplayUsageError(f"--reprocess reads uploads: --topic {' or '.join(uploads)}")
        if foreign and into is None:
            raise ReplayUsageError("--foreign goes with --into")
        expected = into_type(topic, into, foreign, types) if into is not None else None
        if stale_models and not reprocess:
            raise ReplayUsageError("--stale-models goes with --reprocess")
        if force and not (reprocess or into):
            raise ReplayUsageError("--force goes with --reprocess or --into")
        if resume and (dry_run or out == "-"):
            raise ReplayUsageError("--resume needs a replay that writes somewhere durable")
        _check_paths(out, checkpoint)
        now = now or datetime.now(UTC)
        start = bound(
            from_offset,
            from_time,
            from_beginning,
            ("--from-offset", "--from-time", "--from-beginning"),
            now,
        )
        end = bound(to_offset, to_time, until_end, ("--to-offset", "--to-time", "--until-end"), now)
        _check_order(start, end, from_time, to_time)
        options = {
            "topic": topic,
            "partitions": partitions,
            "from_offset": from_offset,
            "from_time": from_time,
            "from_beginning": from_beginning,
            "to_offset": to_offset,
            "to_time": to_time,
            "until_end": until_end,
            "user": user,
            "photo": photo,
            "reason": reason,
            "limit": limit,
            "into": into,
            "reprocess": reprocess,
            "out": out,
            "force": force,
            "stale_models": stale_models,
            "rate": rate,
        }
        return cls(
            topic=topic,
            partitions=parse_partition_spec(partitions),
            start=start,
            end=end,
            filters=Filters(user=user, photo=photo, reason=reason),
            limit=limit,
            mode=mode,
            into=into,
            into_type=expected,
            out=out,
            force=force,
            stale_models=stale_models,
            dry_run=dry_run,
            rate=rate,
            resume=resume,
            checkpoint=checkpoint,
            options=tuple(options.items()),
        )

    @property
    def identity(self) -> dict[str, Any]:
        """What a checkpoint records and a --resume must match (a fresh dict each time)."""
        return dict(self.options)

    @property
    def checkpoint_path(self) -> Path:
        """--checkpoint, or .darkroom/replay/<topic>-<hash of the identity>.json."""
        if self.checkpoint is not None:
            return self.checkpoint
        text = json.dumps(self.identity, sort_keys=True)
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]  # a name, not a security check
        return CHECKPOINT_DIR / f"{self.topic}-{digest}.json"

    def partitions_of(self, topics: Mapping[str, int]) -> list[int]:
        """The partitions to read, given each existing topic's partition count; checks that
        --topic and --into exist and that every partition named does."""
        if self.topic not in topics:
            raise ReplayUsageError(f"--topic {self.topic!r} does not exist")
        if self.into is not None and self.into not in topics:
            raise ReplayUsageError(f"--into {self.into!r} does not exist")
        return expand_partitions(self.partitions, topics[self.topic])


def _mode(into: str | None, reprocess: bool, out: str | None, dry_run: bool) -> Mode | None:
    given = [m for m, on in ((Mode.INTO, into), (Mode.REPROCESS, reprocess), (Mode.OUT, out)) if on]
    if len(given) > 1:
        raise ReplayUsageError(f"choose one of {', '.join(given)}")
    if not given and not dry_run:
        raise ReplayUsageError("say what to do: --into TOPIC, --reprocess, --out FILE or --dry-run")
    return given[0] if given else None


def _check_paths(out: str | None, checkpoint: Path | None) -> None:
    # what can be told from the names alone; a file that cannot be written is found on opening
    out_file = None if out in (None, "-") else Path(str(out))
    if out_file is not None and out_file.is_dir():
        raise ReplayUsageError(f"--out {out} is a directory: name a file in it")
    if checkpoint is not None and checkpoint.is_dir():
        raise ReplayUsageError(f"--checkpoint {checkpoint} is a directory: name a file in it")
    # a mistyped folder is not made: the next --resume would look for it elsewhere
    if checkpoint is not None and not checkpoint.parent.is_dir():
        folder = checkpoint.parent
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ReplayUsageError(
            f"--checkpoint {checkpoint}: {folder} {problem} (it is not made for you: make "
            "it, or leave --checkpoint out for a file under .darkroom/replay)"
        )
    # a checkpoint is replaced by renaming over it: never over /dev/full, a FIFO, a socket
    if checkpoint is not None and checkpoint.exists() and not checkpoint.is_file():
        raise ReplayUsageError(f"--checkpoint {checkpoint} is not a regular file")
    if out_file and checkpoint and out_file.resolve() == checkpoint.resolve():
        raise ReplayUsageError("--out and --checkpoint name the same file")


def _check_order(start: Bound, end: Bound, from_time: str | None, to_time: str | None) -> None:
    """Two ends of the same kind can be compared now; an offset against a time only once the
    time is found in each partition (the OffsetResolver does). An equal start and end is a
    valid, empty range."""
    if start.offset is not None and end.offset is not None and end.offset < start.offset:
        raise ReplayUsageError(
            f"the end (--to-offset {end.offset}) is before the start "
            f"(--from-offset {start.offset}): nothing to replay"
        )
    if start.time is not None and end.time is not None and end.time < start.time:
        raise ReplayUsageError(
            f"the end (--to-time {shorten(to_time or '')} = {_utc(end.time)}) is before the "
            f"start (--from-time {shorten(from_time or '')} = {_utc(start.time)})"
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
