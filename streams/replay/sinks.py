"""Where replayed events go: another topic (copy / re-drive), the engine (reprocess), a file."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from confluent_kafka import KafkaError, Message, Producer

from streams.config import Settings
from streams.contracts import headers
from streams.contracts.codec import Codec, DecodedEvent, MalformedEventError
from streams.contracts.rows import message_row, to_json_line
from streams.contracts.schemas import FORGET_REQUESTS, EventType
from streams.errors import OperationError
from streams.pipeline import RawMessage
from streams.replay.forgotten import Forgotten
from streams.replay.targets import family
from streams.tail import scan


@dataclass(frozen=True)
class SourceMessage:
    """A selected message, decoded when it could be."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    event: DecodedEvent | None


@dataclass
class SinkCounts:
    """What a sink did."""

    written: int = 0
    skipped: int = 0  # e.g. already enriched with the current models
    forgotten: int = 0  # uploads of a deleted photo or an erased user (streams/replay/forgotten)
    refused: int = 0  # not of the type the destination topic carries (streams/replay/targets.py)
    by_partition: dict[int, int] = field(default_factory=dict)


class Sink(Protocol):
    """What the replay loop needs."""

    counts: SinkCounts

    def write(self, message: SourceMessage) -> None:
        """Take one message (may buffer)."""

    def flush(self) -> None:
        """Make everything written so far durable (acknowledged); raise if not."""

    def written_through(self) -> dict[int, int]:
        """Per source partition, the highest source offset this replay id already wrote."""

    def close(self) -> None:
        """Release resources."""


def replay_headers(
    replay_id: str, message: SourceMessage, force: bool
) -> list[tuple[str, str | bytes | None]]:
    """The source's headers minus old replay headers, plus this replay's."""
    ours = {headers.REPLAY_ID, headers.REPLAY_SOURCE, headers.FORCE}
    kept: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in message.headers if k not in ours
    ]
    kept += [
        (headers.REPLAY_ID, replay_id.encode()),
        (headers.REPLAY_SOURCE, f"{message.topic}/{message.partition}/{message.offset}".encode()),
    ]
    if force:
        kept.append((headers.FORCE, b"1"))
    return kept


class DeliveryError(OperationError):
    """The broker did not acknowledge every message a replay sent."""


class DeliveryTracker:
    """Counts acknowledgements of a producer; flush raises if any message was refused."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.errors: list[str] = []

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        hdrs: list[tuple[str, str | bytes | None]],
    ) -> None:
        def report(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.errors.append(err.str())

        while True:
            try:
                self.producer.produce(
                    topic, key=key, value=value, headers=list(hdrs), on_delivery=report
                )
                return
            except BufferError:
                self.producer.poll(0.1)

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self.producer.flush(timeout_s)
        if left or self.errors:
            raise DeliveryError(f"{left} message(s) unacknowledged, errors: {self.errors[:3]}")


def replayed_offsets(
    settings: Settings, codec: Codec, topics: Iterable[str], replay_id: str, source_topic: str
) -> dict[int, int]:
    """Scan ``topics`` for messages written by ``replay_id``: max source offset per partition."""
    through: dict[int, int] = {}
    for topic in topics:
        for message in scan(settings, codec, topic):
            hdrs = dict(message.headers)
            if hdrs.get(headers.REPLAY_ID) != replay_id.encode():
                continue
            source_topic_, partition, offset = hdrs[headers.REPLAY_SOURCE].decode().rsplit("/", 2)
            if source_topic_ == source_topic:
                through[int(partition)] = max(through.get(int(partition), -1), int(offset))
    return through


class CopySink:
    """--into TOPIC: copy key, value and headers; a dead letter is re-driven as its original."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        producer: Producer,
        into: str,
        replay_id: str,
        source_topic: str,
        force: bool,
        expected: EventType | None = None,
        forgotten: Forgotten | None = None,
    ) -> None:
        """``expected``: the type ``into`` carries (None: a topic that is not Darkroom's);
        ``forgotten``: what the workers forgot, whose uploads are not copied."""
        self.settings, self.codec, self.into = settings, codec, into
        self.replay_id, self.source_topic, self.force = replay_id, source_topic, force
        self.expected = expected
        self.forgotten = forgotten or Forgotten()
        self.delivery = DeliveryTracker(producer)
        self.counts = SinkCounts()

    def write(self, message: SourceMessage) -> None:
        key, value = message.key, message.value
        if message.event is not None and message.event.event_type is EventType.PHOTO_FAILED:
            key, value = (
                message.event.record["original_key"],
                message.event.record["original_value"],
            )
        if not self._fits(message, value):
            self.counts.refused += 1
            return
        if self._forgotten(message):
            self.counts.forgotten += 1
            return
        self.delivery.produce(
            self.into, key, value, replay_headers(self.replay_id, message, self.force)
        )
        self.counts.written += 1

    def _fits(self, message: SourceMessage, value: bytes) -> bool:
        """Whether ``value`` is of the type ``into`` carries. Bytes that never decoded may go
        back to the uploads topic only (a re-drive as is: e.g. a schema the registry did not
        know then), where a worker dead-letters them again if they still do not decode."""
        if self.expected is None:
            return True
        if message.event is not None and message.event.event_type is not EventType.PHOTO_FAILED:
            found: EventType | None = message.event.event_type
        else:
            try:
                found = self.codec.decode(value).event_type
            except MalformedEventError:
                found = None
        return found in family(self.expected) or (
            found is None and self.expected is EventType.PHOTO_UPLOADED
        )

    def _forgotten(self, message: SourceMessage) -> bool:
        """Whether the message is an upload (or a dead letter's) of something forgotten; a
        request to forget that is copied is remembered for the uploads after it."""
        event = message.event
        if event is None:
            return False
        if event.event_type in FORGET_REQUESTS:
            self.forgotten.add(event.record)
            return False
        original = original_upload(message, self.codec)
        if original is None:
            return False
        return self.forgotten.covers(self.codec.decode(original.value).record)

    def flush(self) -> None:
        self.delivery.flush()

    def written_through(self) -> dict[int, int]:
        return replayed_offsets(
            self.settings, self.codec, [self.into], self.replay_id, self.source_topic
        )

    def close(self) -> None:
        self.flush()


class ExportWriteError(OperationError):
    """The export file (or stdout) could not be opened, read back, written or flushed."""


class ExportSink:
    """--out FILE.jsonl (or - for stdout): one decoded event per line, as `tail --json` prints.

    Every OSError (a full disk, a folder that cannot be made, a closed pipe) is an
    ExportWriteError; since flush() raises it, the replay's checkpoint never moves past lines
    that did not reach the file.
    """

    def __init__(self, target: str, resume: bool) -> None:
        self.target = target
        self.counts = SinkCounts()
        with self._os_errors("read"):
            self._through = self._read_existing() if resume else {}
        if target == "-":
            self.handle: IO[str] = sys.stdout
        else:
            with self._os_errors("write"):
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                # kept open across batches; close() closes it
                self.handle = Path(target).open("a" if resume else "w", encoding="utf-8")  # noqa: SIM115

    @contextmanager
    def _os_errors(self, doing: str) -> Iterator[None]:
        name = "stdout" if self.target == "-" else self.target
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            # mkdir fails on a folder above the file: say which one
            if exc.filename is not None and os.fsdecode(exc.filename) != name:
                reason += f" ({os.fsdecode(exc.filename)})"
            raise ExportWriteError(f"cannot {doing} {name}: {reason}") from None

    def _read_existing(self) -> dict[int, int]:
        path = Path(self.target)
        if self.target == "-" or not path.is_file():
            return {}  # nothing written yet, or a device or pipe: nothing to read back
        through: dict[int, int] = {}
        with path.open("r+b") as handle:
            complete = 0  # the end of the last whole line
            for line in handle:  # line by line: an export may be larger than memory
                if not line.endswith(b"\n"):
                    # a line cut short by the crash is written again: drop it, or the first
                    # line appended would be glued to it
                    handle.truncate(complete)
                    break
                complete += len(line)
                try:
                    row = json.loads(line)
                    partition, offset = row["partition"], row["offset"]
                except (ValueError, TypeError, KeyError, RecursionError):
                    continue  # not a row of ours: nothing to skip for it
                if isinstance(partition, int) and isinstance(offset, int):
                    through[partition] = max(through.get(partition, -1), offset)
        return through

    def write(self, message: SourceMessage) -> None:
        row = message_row(
            message.topic, message.partition, message.offset, message.key, message.event
        )
        if message.event is None:
            row["value"] = message.value
        with self._os_errors("write"):
            self.handle.write(to_json_line(row) + "\n")
        self.counts.written += 1

    def flush(self) -> None:
        with self._os_errors("write"):
            self.handle.flush()

    def written_through(self) -> dict[int, int]:
        return dict(self._through)

    def close(self) -> None:
        if self.handle is sys.stdout:
            self.flush()
            return
        with self._os_errors("write"):
            self.handle.close()  # flushes first, and closes the file even when that fails


def original_upload(message: SourceMessage, codec: Codec) -> RawMessage | None:
    """The upload message a selected message carries, as the pipeline takes it: itself, or a
    dead letter's original at its original position. None when it carries no whole upload
    (not an upload, or a dead letter that kept only the first bytes of a huge original)."""
    event = message.event
    if event is None:
        return None
    if event.event_type is EventType.PHOTO_UPLOADED:
        return RawMessage(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            tuple(message.headers),
        )
    record = event.record
    if event.event_type is not EventType.PHOTO_FAILED or not record["original_decoded"]:
        return None
    if record.get("original_truncated"):
        return None
    try:
        original = codec.decode(record["original_value"])
    except MalformedEventError:
        return None
    if original.event_type is not EventType.PHOTO_UPLOADED:
        return None
    source = record.get("source") or {}
    return RawMessage(
        source.get("topic", message.topic),
        source.get("partition", message.partition),
        source.get("offset", message.offset),
        record["original_key"],
        record["original_value"],
    )
