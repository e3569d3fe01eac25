"""The project's topics and their creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic

from streams.config import Settings
from streams.contracts.schemas import EventType
from streams.kafka.clients import make_admin


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partitions, replication and topic configs."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def project_topics(settings: Settings) -> list[TopicSpec]:
    """photos.uploaded, photos.enriched and photos.failed with the configured layout."""
    t = settings.topics
    names = (t.uploaded, t.enriched, t.failed)
    return [TopicSpec(name, t.partitions, t.replication) for name in names]


def topic_event_types(settings: Settings) -> dict[str, EventType]:
    """Which event type each project topic carries."""
    t = settings.topics
    return {
        t.uploaded: EventType.PHOTO_UPLOADED,
        t.enriched: EventType.PHOTO_ENRICHED,
        t.failed: EventType.PHOTO_FAILED,
    }


def ensure_topics(settings: Settings, specs: list[TopicSpec], timeout_s: float = 10.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = make_admin(settings)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
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
