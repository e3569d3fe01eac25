"""Read events off a topic and decode them, without joining or committing for any group."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from streams.config import Settings
from streams.contracts.codec import Codec, DecodedEvent, MalformedEventError
from streams.kafka.clients import KafkaReadError, make_consumer, message_headers, probe
from streams.kafka.rights import require_topics


@dataclass(frozen=True)
class TailedMessage:
    """One message: where it was, and either its decoded event or why it did not decode."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    event: DecodedEvent | None
    error: str | None
    raw: bytes = b""  # the value as consumed
    headers: tuple[tuple[str, bytes], ...] = ()


def tail(
    settings: Settings,
    codec: Codec,
    topic: str,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    idle_timeout_s: float | None = None,
) -> Iterator[TailedMessage]:
    """Yield messages of every partition of ``topic`` as they arrive.

    Starts at the beginning or at the current end of each partition; stops after
    ``max_messages`` or after ``idle_timeout_s`` seconds without a message (never, if None).
    """
    partitions = _partitions(settings, [topic])
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer: Consumer = make_consumer(settings)
    consumer.assign([TopicPartition(t, p, start) for t, p in partitions])
    try:
        yield from _read(consumer, codec, max_messages, idle_timeout_s)
    finally:
        consumer.close()


def scan(
    settings: Settings, codec: Codec, topic: str, timeout_s: float = 120.0
) -> Iterator[TailedMessage]:
    """Every committed message of ``topic`` from its beginning to its end as of now.

    It stops at the end of each partition, not after a quiet spell: on Apache Kafka the first
    fetch from a topic can take longer than any short idle timeout, and a scan that stopped
    early made ``replay --resume`` write outputs twice. Only committed records are read
    (``read_committed``: what an exactly-once worker aborted is not there).
    """
    yield from scan_many(settings, codec, [topic], timeout_s)


def scan_many(
    settings: Settings, codec: Codec, topics: Sequence[str], timeout_s: float = 120.0
) -> Iterator[TailedMessage]:
    """``scan`` of several topics with one consumer (their messages interleaved; each
    partition's in order)."""
    partitions = _partitions(settings, topics)
    reading: dict[str, str | bool] = {
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    }
    consumer = make_consumer(settings, None, **reading)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
    deadline = time.monotonic() + timeout_s
    at_end: set[tuple[str, int]] = set()
    try:
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                missing = sorted(set(partitions) - at_end)
                raise KafkaReadError(
                    f"did not reach the end of partitions "
                    f"{', '.join(f'{t}/{p}' for t, p in missing)} within {timeout_s:g} s"
                )
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                at_end.add((msg.topic() or "", msg.partition() or 0))
            elif error is not None:
                raise KafkaReadError(f"consume failed: {error.str()}")
            else:
                yield _decode(msg, codec)
    finally:
        consumer.close()


def _partitions(settings: Settings, topics: Sequence[str]) -> list[tuple[str, int]]:
    metadata = probe(settings)
    known = ", ".join(sorted(t for t in metadata.topics if not t.startswith("__"))) or "none"
    require_topics(settings, metadata, list(topics), f"topics: {known}")
    return [(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)]


def _read(
    consumer: Consumer, codec: Codec, max_messages: int | None, idle_timeout_s: float | None
) -> Iterator[TailedMessage]:
    count = 0
    last_seen = time.monotonic()
    while max_messages is None or count < max_messages:
        msg = consumer.poll(0.2)
        if msg is None:
            if idle_timeout_s is not None and time.monotonic() - last_seen >= idle_timeout_s:
                return
            continue
        error = msg.error()
        if error is not None:  # partition EOF is off by default; anything here is a real error
            raise KafkaReadError(f"consume failed: {error.str()}")
        last_seen = time.monotonic()
        count += 1
        yield _decode(msg, codec)


def _decode(msg: Message, codec: Codec) -> TailedMessage:
    event, error = None, None
    raw = msg.value() or b""
    try:
        event = codec.decode(raw)
    except MalformedEventError as exc:
        error = str(exc)
    ts_type, ts = msg.timestamp()
    return TailedMessage(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        timestamp_ms=ts if ts_type else None,
        key=msg.key(),
        event=event,
        error=error,
        raw=raw,
        headers=tuple(message_headers(msg)),
    )
