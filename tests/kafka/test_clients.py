"""Client configuration (the profile is applied in one place, overrides win) and watermarks."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.config import load_settings
from streams.kafka.clients import consumer_config, producer_config, watermarks


def test_embedded_profile_applies_its_workarounds() -> None:
    settings = load_settings(kafka={"profile": "embedded", "bootstrap": "h:1"})
    producer = producer_config(settings)
    assert producer["bootstrap.servers"] == "h:1"
    assert producer["batch.num.messages"] == 1 and producer["enable.idempotence"] is False
    consumer = consumer_config(settings)
    assert consumer["session.timeout.ms"] == 6000 and consumer["fetch.wait.max.ms"] == 10


def test_standard_profile_keeps_librdkafka_defaults_and_idempotence() -> None:
    settings = load_settings(kafka={"profile": "standard"})
    producer = producer_config(settings)
    assert producer["enable.idempotence"] is True and "batch.num.messages" not in producer
    assert "session.timeout.ms" not in consumer_config(settings)


def test_readers_never_commit_and_overrides_win() -> None:
    settings = load_settings(kafka={"librdkafka": {"security.protocol": "SSL"}})
    reader = consumer_config(settings)
    assert reader["enable.auto.commit"] is False and reader["group.id"].startswith(
        "darkroom-reader-"
    )
    assert reader["security.protocol"] == "SSL"
    grouped = consumer_config(settings, "workers", **{"fetch.wait.max.ms": 50})
    assert grouped["group.id"] == "workers" and grouped["fetch.wait.max.ms"] == 50


class _Leaderless:
    """A consumer whose partition's leader takes it up after ``refusals`` asks."""

    def __init__(self, refusals: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.refusals, self.code, self.asks = refusals, code, 0

    def get_watermark_offsets(self, tp: TopicPartition, **_: object) -> tuple[int, int]:
        self.asks += 1
        if self.asks <= self.refusals:
            raise KafkaException(KafkaError(self.code))
        return 0, 7


def test_watermarks_wait_for_a_leader_to_take_its_partition_up() -> None:
    consumer = _Leaderless(refusals=3)
    assert watermarks(consumer, TopicPartition("t", 0), 5.0) == (0, 7)  # type: ignore[arg-type]
    assert consumer.asks == 4


def test_watermarks_raise_other_errors_and_give_up_in_time() -> None:
    gone = _Leaderless(refusals=1, code=KafkaError.UNKNOWN_TOPIC_OR_PART)
    with pytest.raises(KafkaException):
        watermarks(gone, TopicPartition("t", 0), 5.0)  # type: ignore[arg-type]
    assert gone.asks == 1
    never = _Leaderless(refusals=10**6)
    with pytest.raises(KafkaException):
        watermarks(never, TopicPartition("t", 0), 0.3)  # type: ignore[arg-type]
    assert 1 < never.asks < 10
