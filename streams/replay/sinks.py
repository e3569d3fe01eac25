"""Where replayed events go: another topic (copy / re-drive), the engine (reprocess), a file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from streams.cli.render import message_row, to_json_line
from streams.config import Settings
from streams.contracts import headers
from streams.contracts.codec import Codec, DecodedEvent, MalformedEventError
from streams.contracts.schemas import EventType
from streams.tail import tail


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
            raise RuntimeError(f"{left} message(s) unacknowledged, errors: {self.errors[:3]}")


def replayed_offsets(
    settings: Settings, codec: Codec, topics: Iterable[str], replay_id: str, source_topic: str
) -> dict[int, int]:
    """Scan ``topics`` for messages written by ``replay_id``: max source offset per partition."""
    through: dict[int, int] = {}
    for topic in topics:
        for message in tail(settings, codec, topic, from_beginning=True, idle_timeout_s=1.0):
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
    ) -> None:
        self.settings, self.codec, self.into = settings, codec, into
        self.replay_id, self.source_topic, self.force = replay_id, source_topic, force
        self.delivery = DeliveryTracker(producer)
        self.counts = SinkCounts()

    def write(self, message: SourceMessage) -> None:
        key, value = message.key, message.value
        if message.event is not None and message.event.event_type is EventType.PHOTO_FAILED:
            key, value = (
                message.event.record["original_key"],
                message.event.record["original_value"],
            )
        self.delivery.produce(
            self.into, key, value, replay_headers(self.replay_id, message, self.force)
        )
        self.counts.written += 1

    def flush(self) -> None:
        self.delivery.flush()

    def written_through(self) -> dict[int, int]:
        return replayed_offsets(
            self.settings, self.codec, [self.into], self.replay_id, self.source_topic
        )

    def close(self) -> None:
        self.flush()


class ExportSink:
    """--out FILE.jsonl (or - for stdout): one decoded event per line, as `tail --json` prints."""

    def __init__(self, target: str, resume: bool) -> None:
        self.target = target
        self.counts = SinkCounts()
        self._through = self._read_existing() if resume else {}
        if target == "-":
            self.handle: IO[str] = sys.stdout
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            # kept open across batches; close() closes it
            self.handle = Path(target).open("a" if resume else "w", encoding="utf-8")  # noqa: SIM115

    def _read_existing(self) -> dict[int, int]:
        if self.target == "-" or not Path(self.target).exists():
            return {}
        through: dict[int, int] = {}
        for line in Path(self.target).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash: it is written again
            through[row["partition"]] = max(through.get(row["partition"], -1), row["offset"])
        return through

    def write(self, message: SourceMessage) -> None:
        row = message_row(
            message.topic, message.partition, message.offset, message.key, message.event
        )
        if message.event is None:
            row["value"] = message.value
        self.handle.write(to_json_line(row) + "\n")
        self.counts.written += 1

    def flush(self) -> None:
        self.handle.flush()

    def written_through(self) -> dict[int, int]:
        return dict(self._through)

    def close(self) -> None:
        self.flush()
        if self.handle is not sys.stdout:
            self.handle.close()


def upload_of(message: SourceMessage, codec: Codec) -> dict[str, Any] | None:
    """The PhotoUploaded a message carries: itself, or a dead letter's original."""
    event = message.event
    if event is None:
        return None
    if event.event_type is EventType.PHOTO_UPLOADED:
        return event.record
    if event.event_type is EventType.PHOTO_FAILED and event.record["original_decoded"]:
        try:
            original = codec.decode(event.record["original_value"])
        except MalformedEventError:
            return None
        return original.record if original.event_type is EventType.PHOTO_UPLOADED else None
    return None
