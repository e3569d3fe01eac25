"""Topic creation: a topic is usable by every client once ensure_topics returns."""

from __future__ import annotations

import uuid

import pytest

from streams.config import Settings
from streams.kafka.clients import make_admin
from streams.kafka.topics import TopicLayoutError, TopicSpec, ensure_topics

pytestmark = pytest.mark.broker


def test_a_fresh_client_sees_every_partition_led_right_after_creation(
    broker_settings: Settings,
) -> None:
    # A new client's metadata can lack a topic Kafka 4.4 has just created (Faust's consumer then
    # took a changelog for a topic with 0 partitions). Without ensure_topics' wait this test
    # failed in 2 of 3 runs: a race, so it asks 30 times.
    specs = [TopicSpec(f"fresh-{uuid.uuid4().hex[:8]}", 8, 1) for _ in range(30)]
    for spec in specs:
        assert ensure_topics(broker_settings, [spec]) == [spec.name]
        # a new client asking for every topic, as Faust's clients do at start
        topic = make_admin(broker_settings).list_topics(timeout=10).topics.get(spec.name)
        assert topic is not None and topic.error is None and len(topic.partitions) == 8
        assert all(p.leader >= 0 for p in topic.partitions.values())
    assert ensure_topics(broker_settings, specs) == []  # existing: nothing created, still checked


def test_an_existing_topic_with_fewer_partitions_is_refused_with_both_counts(
    broker_settings: Settings,
) -> None:
    name = f"small-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker_settings, [TopicSpec(name, 1, 1)])
    with pytest.raises(TopicLayoutError, match=f"{name} has 1, not 4"):
        ensure_topics(broker_settings, [TopicSpec(name, 4, 1)])
