"""The project's topics and their creation.

A topic the controller has just created is not yet in every client's metadata: on Apache Kafka
4.4 a new client asking right after the creation did not see it in 7 of 20 tries. Faust,
creating its changelog topics itself and subscribing at once, then took "0 partitions" for a
changelog and crashed the agent with PartitionsMismatch (seen in the worker tests).
``ensure_topics`` therefore returns only when every topic it was given shows all its partitions
with a leader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic

from streams.config import Settings
from streams.errors import UnreachableError, UsageError
from streams.kafka.clients import make_admin


class TopicsNotReadyError(UnreachableError):
    """Topics that do not show all their partitions with a leader in time."""


class TopicLayoutError(UsageError):
    """Existing topics with fewer partitions than the settings say."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partitions, replication and topic configs."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def project_topics(settings: Settings) -> list[TopicSpec]:
    """photos.uploaded, .enriched, .failed and .shadow with the configured layout."""
    t = settings.topics
    names = (t.uploaded, t.enriched, t.failed, t.shadow)
    return [TopicSpec(name, t.partitions, t.replication) for name in names]


def shadow_topic(settings: Settings) -> TopicSpec:
    """photos.shadow, which the worker creates itself when missing (it came after the others)."""
    t = settings.topics
    return TopicSpec(t.shadow, t.partitions, t.replication)


def ensure_topics(settings: Settings, specs: list[TopicSpec], timeout_s: float = 10.0) -> list[str]:
    """Create the topics that do not exist yet and wait until all of ``specs`` can be used;
    returns the names created."""
    admin = make_admin(settings)
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    fewer = [
        f"{s.name} has {len(existing[s.name].partitions)}, not {s.partitions}"
        for s in specs
        if s.name in existing and 0 < len(existing[s.name].partitions) < s.partitions
    ]
    if fewer:
        raise TopicLayoutError(
            f"topics with fewer partitions than configured (DARKROOM_TOPICS_PARTITIONS): "
            f"{'; '.join(fewer)}. Keys would land on other partitions than before: point the "
            "settings at the topics' real layout, or recreate the topics"
        )
    created = _create(admin, missing, timeout_s) if missing else []
    _wait_ready(admin, specs, timeout_s)
    return created


def _create(admin: Any, missing: list[TopicSpec], timeout_s: float) -> list[str]:
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication, config=s.config) for s in missing],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
                raise
    return created


def _wait_ready(admin: Any, specs: list[TopicSpec], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        waiting = [spec.name for spec in specs if not _ready(topics.get(spec.name), spec)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TopicsNotReadyError(
                f"topics without all their partitions led after {timeout_s:g} s: "
                f"{', '.join(waiting)} (is every broker of the cluster up?)"
            )
        time.sleep(0.1)


def _ready(topic: Any, spec: TopicSpec) -> bool:
    if topic is None or topic.error is not None:
        return False
    partitions = topic.partitions
    return len(partitions) >= spec.partitions and all(
        p.leader >= 0 and p.error is None for p in partitions.values()
    )
