"""--reprocess: run the worker's pipeline on selected uploads, emit to enriched / failed.

Which photos are already done, and with which model versions, is read from photos.enriched
itself (each event's ``produced_by``), and each photo's latest attempt from both outcome topics,
so the replay needs nothing from the workers' tables; what was forgotten, from the PhotoRemoved
events there too (streams/replay/forgotten.py): it is not enriched again. A replay is a new
attempt at each photo it enriches: its outcomes have new event ids (keyed by the replay id) and
the next attempt number. Near-duplicates are not searched here (their index lives in the
workers); to get them, re-drive uploads with `--into photos.uploaded --force` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from confluent_kafka import Producer

from streams.config import Settings
from streams.contracts import headers
from streams.contracts.codec import Codec
from streams.contracts.schemas import FORGET_REQUESTS, EventType
from streams.engine import Enricher
from streams.logs import get_logger
from streams.pipeline import Photo, Pipeline, RawMessage
from streams.pipeline.poison import alone, is_transient
from streams.replay.forgotten import read_forgotten
from streams.replay.sinks import (
    DeliveryTracker,
    SinkCounts,
    SourceMessage,
    original_upload,
    replay_headers,
    replayed_offsets,
)
from streams.tail import scan

log = get_logger("darkroom.replay")

OUTCOMES = (EventType.PHOTO_ENRICHED, EventType.PHOTO_FAILED)


def versions_from_produced_by(produced_by: dict[str, dict[str, str]]) -> dict[str, str]:
    """model name -> version, splitting composite producers ('det+rec', 'v1+v2')."""
    versions: dict[str, str] = {}
    for ref in produced_by.values():
        for name, version in zip(ref["name"].split("+"), ref["version"].split("+"), strict=False):
            versions[name] = version
    return versions


@dataclass
class Recorded:
    """What the outcome topics say about each photo."""

    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # of its latest enrichment
    attempts: dict[str, int] = field(default_factory=dict)  # its highest attempt so far


def recorded_outcomes(settings: Settings, codec: Codec) -> Recorded:
    """Per photo id: the model versions of its latest PhotoEnriched and its highest attempt of
    either outcome (a replay's outcomes are the next attempt)."""
    found = Recorded()
    for topic in (settings.topics.enriched, settings.topics.failed):
        for message in scan(settings, codec, topic):
            event = message.event
            if event is None or event.event_type not in OUTCOMES or not event.record["photo_id"]:
                continue
            record = event.record
            photo = record["photo_id"]
            found.attempts[photo] = max(found.attempts.get(photo, 0), record["attempt"])
            if event.event_type is EventType.PHOTO_ENRICHED:
                found.versions[photo] = versions_from_produced_by(record["produced_by"])
    return found


def is_stale(recorded: dict[str, str] | None, current: dict[str, str]) -> bool:
    """Recorded with other versions of any current model (a never-enriched photo is not stale)."""
    return recorded is not None and any(recorded.get(n) != v for n, v in current.items())


class ReprocessSink:
    """Enrich in batches through the worker's pipeline (without duplicates), tag with the
    replay id."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        producer: Producer,
        enricher: Enricher,
        replay_id: str,
        source_topic: str,
        *,
        force: bool,
        stale_only: bool,
        batch_size: int,
    ) -> None:
        self.settings, self.codec = settings, codec
        self.replay_id, self.source_topic = replay_id, source_topic
        self.force, self.stale_only, self.batch_size = force, stale_only, batch_size
        self.delivery = DeliveryTracker(producer)
        self.pipeline = Pipeline.from_settings(
            settings, enricher, skip=self._skip, attempts=self._attempt
        )
        self.current = enricher.model_versions_for  # user id -> the versions that serve them
        self.recorded = recorded_outcomes(settings, codec)
        self.forgotten = read_forgotten(settings, codec)
        self.counts = SinkCounts()
        self._pending: list[tuple[SourceMessage, RawMessage]] = []

    def write(self, message: SourceMessage) -> None:
        event = message.event
        if event is not None and event.event_type in FORGET_REQUESTS:
            self.forgotten.add(event.record)  # for the uploads after it
        original = original_upload(message, self.codec)
        if original is None:
            self.counts.skipped += 1  # not an upload (the worker dead-lettered it already)
            return
        if self.forgotten.covers(self.codec.decode(original.value).record):
            self.counts.forgotten += 1
            return
        # this replay is a new attempt at each photo: its outcomes are keyed by the replay id
        ours = ((headers.REPLAY_ID, self.replay_id.encode()),)
        self._pending.append((message, replace(original, headers=original.headers + ours)))
        if len(self._pending) >= self.batch_size:
            self._enrich_pending()

    def _skip(self, photo: Photo) -> bool:
        assert photo.upload is not None
        recorded = self.recorded.versions.get(photo.upload["photo_id"])
        current = self.current(photo.upload["user_id"])
        if self.stale_only:
            wanted = is_stale(recorded, current)
        else:
            wanted = self.force or recorded is None or is_stale(recorded, current)
        return not wanted

    def _attempt(self, photo: Photo) -> int:
        assert photo.upload is not None
        return self.recorded.attempts.get(photo.upload["photo_id"], 0) + 1

    def _enrich_pending(self) -> None:
        pending, self._pending = self._pending, []
        originals = [original for _, original in pending]
        try:
            photos = self.pipeline.run(originals).photos
        except Exception as error:
            if is_transient(error):
                raise
            # one photo breaks the batch: each alone, that one as its dead letter
            log.error("batch raised; retrying its photos one by one", exc_info=error)
            photos = [alone(self.pipeline, original).photos[0] for original in originals]
        for (source, _), photo in zip(pending, photos, strict=True):
            if photo.topic is None or photo.value is None:
                self.counts.skipped += 1
                continue
            topic = self.settings.topics.enriched
            if photo.topic == "failed":
                topic = self.settings.topics.failed
            elif photo.upload is not None:
                current = self.current(photo.upload["user_id"])
                self.recorded.versions[photo.upload["photo_id"]] = current
            if photo.upload is not None:
                self.recorded.attempts[photo.upload["photo_id"]] = photo.attempt.number
            hdrs = replay_headers(self.replay_id, source, force=False)
            self.delivery.produce(topic, photo.message.key, photo.value, hdrs)
            for shadow in photo.shadows:  # a backfill measures the running experiments too
                self.delivery.produce(self.settings.topics.shadow, photo.message.key, shadow, hdrs)
            self.counts.written += 1

    def flush(self) -> None:
        if self._pending:
            self._enrich_pending()
        self.delivery.flush()

    def written_through(self) -> dict[int, int]:
        return replayed_offsets(
            self.settings,
            self.codec,
            [self.settings.topics.enriched, self.settings.topics.failed],
            self.replay_id,
            self.source_topic,
        )

    def close(self) -> None:
        self.flush()
