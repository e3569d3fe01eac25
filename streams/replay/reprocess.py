"""--reprocess: run the engine on selected uploads and emit to the enriched / failed topics.

Which photos are already done, and with which model versions, is read from photos.enriched
itself (each event's ``produced_by``), so the replay needs nothing from the workers' tables.
Near-duplicates are not searched here (their index lives in the workers); to get them, re-drive
uploads with `--into photos.uploaded --force` instead.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from streams.blobs import BlobStore
from streams.config import Settings
from streams.contracts.codec import Codec
from streams.contracts.schemas import EventType, SchemaRepository
from streams.engine import Enriched, Enricher, PhotoInput
from streams.errors import PhotoError
from streams.replay.sinks import (
    DeliveryTracker,
    SinkCounts,
    SourceMessage,
    replay_headers,
    replayed_offsets,
    upload_of,
)
from streams.tail import tail
from streams.worker.outputs import OutputBuilder, RawMessage


def versions_from_produced_by(produced_by: dict[str, dict[str, str]]) -> dict[str, str]:
    """model name -> version, splitting composite producers ('det+rec', 'v1+v2')."""
    versions: dict[str, str] = {}
    for ref in produced_by.values():
        for name, version in zip(ref["name"].split("+"), ref["version"].split("+"), strict=False):
            versions[name] = version
    return versions


def recorded_versions(settings: Settings, codec: Codec) -> dict[str, dict[str, str]]:
    """photo id -> the model versions of its latest PhotoEnriched."""
    latest: dict[str, dict[str, str]] = {}
    for message in tail(
        settings, codec, settings.topics.enriched, from_beginning=True, idle_timeout_s=1.0
    ):
        if message.event is not None and message.event.event_type is EventType.PHOTO_ENRICHED:
            record = message.event.record
            latest[record["photo_id"]] = versions_from_produced_by(record["produced_by"])
    return latest


def is_stale(recorded: dict[str, str] | None, current: dict[str, str]) -> bool:
    """Recorded with other versions of any current model (a never-enriched photo is not stale)."""
    return recorded is not None and any(recorded.get(n) != v for n, v in current.items())


class ReprocessSink:
    """Enrich in batches, emit like a worker does (without duplicates), tag with the replay id."""

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
        self.settings, self.codec, self.enricher = settings, codec, enricher
        self.replay_id, self.source_topic = replay_id, source_topic
        self.force, self.stale_only, self.batch_size = force, stale_only, batch_size
        self.delivery = DeliveryTracker(producer)
        self.blobs = BlobStore(settings.blobs.root, settings.blobs.max_bytes)
        self.outputs = OutputBuilder(SchemaRepository(settings.paths.schemas))
        self.current = enricher.model_versions
        self.recorded = recorded_versions(settings, codec)
        self.counts = SinkCounts()
        self._pending: list[tuple[SourceMessage, dict[str, Any]]] = []

    def write(self, message: SourceMessage) -> None:
        upload = upload_of(message, self.codec)
        if upload is None or not self._wanted(upload["photo_id"]):
            self.counts.skipped += 1
            return
        self._pending.append((message, upload))
        if len(self._pending) >= self.batch_size:
            self._enrich_pending()

    def _wanted(self, photo_id: str) -> bool:
        recorded = self.recorded.get(photo_id)
        if self.stale_only:
            return is_stale(recorded, self.current)
        return self.force or recorded is None or is_stale(recorded, self.current)

    def _enrich_pending(self) -> None:
        batch, self._pending = self._pending, []
        inputs, failures = [], []
        for message, upload in batch:
            try:
                inputs.append(
                    (
                        message,
                        upload,
                        PhotoInput(
                            upload["photo_id"],
                            self.blobs.fetch(upload["blob"], upload.get("content_sha256")),
                        ),
                    )
                )
            except PhotoError as exc:
                failures.append((message, upload, exc.reason.value, "fetch_blob", str(exc)))
        results = self.enricher.enrich([item for _, _, item in inputs])
        for (message, upload, _), result in zip(inputs, results, strict=True):
            if isinstance(result, Enriched):
                record = self.outputs.enriched(upload, result, duplicate_of=None)
                self._emit(message, EventType.PHOTO_ENRICHED, record)
                self.recorded[upload["photo_id"]] = dict(self.current)
            else:
                failures.append((message, upload, result.reason, result.stage, result.detail))
        for message, upload, reason, stage, detail in failures:
            raw = RawMessage(
                message.topic, message.partition, message.offset, message.key, message.value
            )
            self._emit(
                message,
                EventType.PHOTO_FAILED,
                self.outputs.failed(raw, reason, stage, detail, upload),
            )

    def _emit(self, message: SourceMessage, event_type: EventType, record: dict[str, Any]) -> None:
        topic = (
            self.settings.topics.enriched
            if event_type is EventType.PHOTO_ENRICHED
            else self.settings.topics.failed
        )
        key = record["user_id"].encode() if record.get("user_id") else message.key
        self.delivery.produce(
            topic,
            key,
            self.codec.encode(event_type, record),
            replay_headers(self.replay_id, message, force=False),
        )
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
