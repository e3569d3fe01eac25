"""Client configuration: the profile is applied in one place, overrides win."""

from __future__ import annotations

from streams.config import load_settings
from streams.kafka.clients import consumer_config, producer_config


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
