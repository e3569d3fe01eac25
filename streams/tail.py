"""Read events off a topic and decode them, without joining or committing for any group."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, Message, TopicPartition

from streams.config import Settings
from streams.contracts.codec import Codec, DecodedEvent, MalformedEventError
from streams.errors import UsageError
from streams.kafka.clients import KafkaReadError, make_consumer, message_headers, probe


class TopicNotFoundError(UsageError, LookupError):
    """The topic does not exist on the cluster."""


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
    metadata = probe(settings)
    if topic not in metadata.topics:
        known = ", ".join(sorted(t for t in metadata.topics if not t.startswith("__"))) or "none"
        raise TopicNotFoundError(f"topic {topic!r} does not exist (topics: {known})")
    partitions = sorted(metadata.topics[topic].partitions)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer: Consumer = make_consumer(settings)
    consumer.assign([TopicPartition(topic, p, start) for p in partitions])
    try:
        yield from _read(consumer, codec, max_messages, idle_timeout_s)
    finally:
        consumer.close()


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
