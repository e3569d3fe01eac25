"""A 3-node local Kafka cluster: a partition's leader is killed, acks=all writes still land."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.broker import KafkaCluster
from streams.kafka.clients import make_admin
from streams.kafka.topics import TopicSpec, ensure_topics
from tests.broker.test_kafka import consume, produce

pytestmark = pytest.mark.broker


def replicas(cluster: KafkaCluster, topic: str) -> tuple[int, list[int]]:
    """(leader, in-sync replicas) of the topic's partition 0."""
    deadline = time.monotonic() + 30
    while True:  # a topic just created may not be in every node's metadata yet
        metadata = make_admin(cluster.settings).list_topics(topic, timeout=10)
        partition = metadata.topics[topic].partitions.get(0)
        if partition is not None and partition.leader >= 0:
            return partition.leader, sorted(partition.isrs)
        assert time.monotonic() < deadline, f"{topic} has no leader after 30 s"
        time.sleep(0.2)


@pytest.mark.timeout(300)  # three JVM starts, a fencing, a restart: ~1 min on 2 busy cores
def test_three_nodes_survive_killing_a_leader(kafka_trio: KafkaCluster, tmp_path: Path) -> None:
    trio = kafka_trio
    settings = trio.settings
    assert settings.topics.replication == 3 and settings.kafka.profile == "standard"
    assert len(settings.kafka.bootstrap.split(",")) == 3
    status = trio.start()
    assert [n.detail for n in status.nodes] == ["answering Metadata"] * 3
    assert status.bootstrap == settings.kafka.bootstrap == trio.bootstrap
    ensure_topics(settings, [TopicSpec("replicated", 1, 3)])
    leader, isr = replicas(trio, "replicated")
    assert isr == [1, 2, 3]
    produce(settings, "replicated", [b"before"])

    trio.kill_node(leader)
    down = trio.status()
    assert down.running and not down.nodes[leader - 1].running
    assert down.detail == "2 of 3 nodes running, 2 answering Metadata"
    started = time.monotonic()
    produce(settings, "replicated", [f"during-{i}".encode() for i in range(5)])  # acks=all
    failover_s = time.monotonic() - started
    new_leader, isr = replicas(trio, "replicated")
    assert new_leader != leader and leader not in isr and len(isr) == 2

    back = trio.start_node(leader)
    assert back.detail == "answering Metadata"
    assert trio.node_bootstrap(leader) == back.nodes[leader - 1].bootstrap
    deadline = time.monotonic() + 60
    while replicas(trio, "replicated")[1] != [1, 2, 3] and time.monotonic() < deadline:
        time.sleep(0.5)  # the restarted node catches up and rejoins the in-sync replicas
    assert replicas(trio, "replicated")[1] == [1, 2, 3]
    values = consume(settings, "replicated", 6)
    assert values == [b"before"] + [f"during-{i}".encode() for i in range(5)]
    print(f"writes waited {failover_s:.1f} s for a new leader")
