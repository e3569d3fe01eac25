"""Factories for confluent-kafka clients, configured from Settings and the client profile."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata

from streams.config import Settings
from streams.errors import OperationError, UnreachableError
from streams.kafka.profiles import get_profile
from streams.kafka.refusals import ClientErrors
from streams.kafka.security import KafkaSecurity, client_config


class BrokerUnreachableError(UnreachableError, ConnectionError):
    """Kafka did not answer a Metadata request in time."""


class KafkaReadError(OperationError):
    """A consumer met an error from the broker, or no record where one must be."""


def _common(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka.bootstrap,
        "client.id": settings.kafka.client_id,
        # librdkafka logs through Python logging (and so through structlog).
        "logger": logging.getLogger("librdkafka"),
        **client_config(settings.kafka),  # security: streams/kafka/security.py
    }


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Producer settings: common + profile + overrides."""
    profile = get_profile(settings.kafka.profile)
    return {
        "acks": "all",
        # the Java client's partitioner, which aiokafka (the Faust worker) uses too: a key lands
        # on the same partition whichever client sends it, so routing by key agrees everywhere
        "partitioner": "murmur2_random",
        # the one size limit, shared with the Faust worker's producer (Settings.kafka)
        "message.max.bytes": settings.kafka.max_message_bytes,
        **_common(settings),
        **profile.producer,
        **overrides,
    }


def consumer_config(
    settings: Settings, group_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """Consumer settings. Without a group id, a throwaway group that never commits."""
    profile = get_profile(settings.kafka.profile)
    config: dict[str, Any] = {
        **_common(settings),
        "group.id": group_id or f"darkroom-reader-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": group_id is not None,
        "auto.offset.reset": "earliest",
        **profile.consumer,
        **overrides,
    }
    return config


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer for Darkroom events."""
    return Producer(producer_config(settings, **overrides))


def make_consumer(settings: Settings, group_id: str | None = None, **overrides: Any) -> Consumer:
    """A consumer; pass a group id only when offsets should be committed for that group."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    """An admin client (topics, metadata)."""
    return AdminClient(_common(settings))


def probe(settings: Settings, timeout_s: float = 5.0) -> ClusterMetadata:
    """Cluster metadata; else the reason, as soon as it is known: KafkaAuthenticationError
    (refused credentials, untrusted certificate, ...), or BrokerUnreachableError after
    ``timeout_s`` naming the bootstrap and what to do."""
    errors = ClientErrors()
    admin = AdminClient({**_common(settings), "error_cb": errors})  # type: ignore[dict-item]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # short tries: an authentication failure is known in milliseconds, and waiting out
            # the whole timeout for it would only hide it behind "did not answer"
            remaining = max(deadline - time.monotonic(), 0.05)
            metadata: ClusterMetadata = admin.list_topics(timeout=min(0.5, remaining))
            return metadata
        except KafkaException as exc:
            last = exc.args[0].str() if exc.args else str(exc)
        admin.poll(0)  # serves error_cb
        errors.raise_refusal(settings)
        if time.monotonic() >= deadline:
            break
    hint = (
        "Start the embedded broker with `darkroom broker start`, or point "
        "DARKROOM_KAFKA_BOOTSTRAP at your cluster (one that needs TLS or SASL needs "
        "security.protocol in kafka.librdkafka)."
        if KafkaSecurity.from_settings(settings.kafka).protocol == "PLAINTEXT"
        else "Is DARKROOM_KAFKA_BOOTSTRAP right, and the cluster up?"
    )
    raise BrokerUnreachableError(
        f"Kafka at {settings.kafka.bootstrap} did not answer within {timeout_s:g} s ({last}). "
        + hint
    ) from None


# A partition led in the metadata, whose leader has not taken it up yet: seen on Apache Kafka 4.4
# just after a topic's creation (ListOffsets answered NOT_LEADER_FOR_PARTITION although every
# partition showed a leader), so a caller asks again instead of failing.
_NOT_LED_YET = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})


def watermarks(
    consumer: Consumer, tp: TopicPartition, timeout_s: float = 10.0, *, cached: bool = False
) -> tuple[int, int]:
    """(low, high) offsets of ``tp``, asked again while its leader has not taken it up, for up
    to ``timeout_s`` in all; any other error (or one past the time) is raised as it came."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                tp, timeout=max(deadline - time.monotonic(), 0.5), cached=cached
            )
            return int(low), int(high)
        except KafkaException as exc:
            if exc.args[0].code() not in _NOT_LED_YET or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def message_count(settings: Settings, topic: str, consumer: Consumer | None = None) -> int:
    """Messages on ``topic`` now, from its partitions' watermarks (no reading); asked through
    ``consumer`` if given (to poll often without a new client each time)."""
    client = consumer or make_consumer(settings)
    try:
        partitions = client.list_topics(topic, timeout=5).topics[topic].partitions
        marks = [watermarks(client, TopicPartition(topic, p), 5.0) for p in partitions]
    finally:
        if consumer is None:
            client.close()
    return sum(high - low for low, high in marks)


def message_headers(message: Message) -> list[tuple[str, bytes]]:
    """A message's headers as (name, bytes) pairs, whatever form the client returned."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [
        (name, value.encode() if isinstance(value, str) else value or b"") for name, value in pairs
    ]
