"""What a replay may write where: each Darkroom topic carries one family of event types (the
uploads topic: uploads and the requests to forget; photos.enriched: enrichments and removals),
named by its first type, and `replay --into` never puts another type there (a PhotoUploaded on
photos.enriched would reach every downstream consumer as a record of the wrong type)."""

from __future__ import annotations

from collections.abc import Mapping

from streams.config import TopicSettings
from streams.contracts.schemas import ENRICHED_TOPIC_TYPES, UPLOADS_TOPIC_TYPES, EventType
from streams.replay.selection import ReplayUsageError

TopicTypes = Mapping[str, EventType]  # topic -> the first type of the family it carries
_FAMILIES = {
    EventType.PHOTO_UPLOADED: UPLOADS_TOPIC_TYPES,
    EventType.PHOTO_ENRICHED: ENRICHED_TOPIC_TYPES,
}


def family(first: EventType) -> frozenset[EventType]:
    """Every type a topic whose family is named ``first`` carries."""
    return _FAMILIES.get(first, frozenset({first}))


def spelled(first: EventType) -> str:
    """The family for a person: "PhotoEnriched or PhotoRemoved"."""
    return " or ".join(t.value for t in EventType if t in family(first))


def topic_types(topics: TopicSettings) -> dict[str, EventType]:
    """Darkroom's topics and the family each carries (by its first type)."""
    return {
        topics.uploaded: EventType.PHOTO_UPLOADED,
        topics.enriched: EventType.PHOTO_ENRICHED,
        topics.failed: EventType.PHOTO_FAILED,
        topics.shadow: EventType.SHADOW_RESULT,
    }


def written_type(topic: str, types: TopicTypes) -> EventType | None:
    """The type a copy of ``topic`` writes: a dead letter is re-driven as its original upload;
    None for a topic that is not Darkroom's (it may hold anything)."""
    carried = types.get(topic)
    return EventType.PHOTO_UPLOADED if carried is EventType.PHOTO_FAILED else carried


def into_type(topic: str, into: str, foreign: bool, types: TopicTypes) -> EventType | None:
    """The family every record copied --into ``into`` must be of (None: a deliberate copy into a
    topic that is not Darkroom's, unchecked). Refuses what is known to be wrong before anything
    is read."""
    expected = types.get(into)
    if expected is None:
        if not foreign:
            raise ReplayUsageError(
                f"--into {into!r} is not one of Darkroom's topics ({', '.join(types)}); to copy "
                "into another topic on purpose, add --foreign"
            )
        return None
    if foreign:
        raise ReplayUsageError(f"--foreign is for topics that are not Darkroom's, not {into!r}")
    source = written_type(topic, types)
    if source is not None and source is not expected:
        raise ReplayUsageError(
            f"--into {into} carries {spelled(expected)} events; a copy of {topic} writes "
            f"{spelled(source)} events (a dead letter's original upload goes back --into "
            f"{_topic_of(EventType.PHOTO_UPLOADED, types)})"
        )
    return expected


def _topic_of(event_type: EventType, types: TopicTypes) -> str:
    return next(topic for topic, carried in types.items() if carried is event_type)
