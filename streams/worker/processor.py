"""One batch of uploads, start to finish: decode, skip what is done, fetch, enrich, emit, record.

Order matters for crash safety: outputs are sent and *acknowledged* before the tables change,
and the tables change before the batch's offsets are acknowledged (by Faust, after this returns).
A crash anywhere re-delivers the batch; the re-run emits the same event ids (consumers dedupe on
them) and the tables, written once, end equal to a clean run's.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from faust import streams as faust_streams
from faust.types import EventT

from streams.blobs import BlobStore
from streams.contracts import headers as headers_
from streams.contracts.codec import Codec, EncodeError, MalformedEventError
from streams.contracts.schemas import EventType
from streams.engine import Enriched, Enricher, Failed, PhotoInput
from streams.errors import FailureReason, PhotoError
from streams.logs import get_logger
from streams.worker import dedup, state
from streams.worker.metrics import WorkerMetrics
from streams.worker.outputs import OutputBuilder, RawMessage
from streams.worker.tables import Tables

log = get_logger("darkroom.worker")


@dataclass
class Item:
    """One upload's way through a batch."""

    event: EventT[Any]
    message: RawMessage
    upload: dict[str, Any] | None = None
    data: bytes | None = None
    outcome: Enriched | Failed | None = None
    failure: tuple[str, str, str] | None = None  # reason, stage, detail
    record: dict[str, Any] = field(default_factory=dict)


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event: table writes take their changelog partition from
    it, and inside ``take_events`` Faust leaves none set (it raises AssertionError otherwise)."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class BatchProcessor:
    """Everything the agent does with a batch of events."""

    def __init__(
        self,
        *,
        codec: Codec,
        blobs: BlobStore,
        enricher: Enricher,
        tables: Tables,
        outputs: OutputBuilder,
        metrics: WorkerMetrics,
        policy: dedup.DuplicatePolicy,
        enriched_topic: Any,
        failed_topic: Any,
    ) -> None:
        self.codec, self.blobs, self.enricher, self.tables = codec, blobs, enricher, tables
        self.outputs, self.metrics, self.policy = outputs, metrics, policy
        self.enriched_topic, self.failed_topic = enriched_topic, failed_topic
        self.versions = enricher.model_versions
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engine")

    async def process(self, events: Sequence[EventT[Any]]) -> None:
        """Handle ``events`` completely; return only when every output is acknowledged."""
        started = time.perf_counter()
        self.metrics.batch_size.observe(len(events))
        self.metrics.in_flight.inc(len(events))
        try:
            items = [self._decode(event) for event in events]
            todo = [item for item in items if item.failure is None and not self._skip(item)]
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._fetch_and_enrich, todo)
            self._build_outputs(items)
            await self._send(items)
            self._record(items)
        finally:
            self.metrics.in_flight.dec(len(events))
            self.metrics.stage_seconds.labels("batch").observe(time.perf_counter() - started)

    def _decode(self, event: EventT[Any]) -> Item:
        message = event.message
        raw = RawMessage(
            message.topic, message.partition, message.offset, message.key, message.value or b""
        )
        item = Item(event, raw)
        try:
            decoded = self.codec.decode(raw.value)
        except MalformedEventError as exc:
            item.failure = (FailureReason.MALFORMED_EVENT, "decode_event", str(exc))
            return item
        if decoded.event_type is not EventType.PHOTO_UPLOADED:
            item.failure = (
                FailureReason.MALFORMED_EVENT,
                "decode_event",
                f"expected a PhotoUploaded, got a {decoded.event_type.value}",
            )
            return item
        item.upload = decoded.record
        return item

    def _skip(self, item: Item) -> bool:
        """Already done with these models (a redelivery or a replay), and not forced."""
        assert item.upload is not None
        headers = dict(item.event.message.headers or [])
        if headers.get(headers_.FORCE) in (b"1", "1"):
            return False
        done = state.already_done(
            self.tables.photo_state.get(item.upload["photo_id"]),
            item.upload["event_id"],
            self.versions,
        )
        if done:
            self.metrics.photos.labels("skipped").inc()
        return done

    def _fetch_and_enrich(self, items: list[Item]) -> None:
        """Runs in a thread: blob I/O and the engine never block the event loop (heartbeats)."""
        started = time.perf_counter()
        for item in items:
            try:
                item.data = self._fetch(item.upload or {})
            except PhotoError as exc:
                item.failure = (exc.reason, "fetch_blob", str(exc))
            except Exception as exc:  # an I/O error nobody foresaw: this photo's, not the batch's
                log.exception("fetch failed unexpectedly")
                item.failure = (
                    FailureReason.INTERNAL_ERROR,
                    "fetch_blob",
                    f"unexpected {type(exc).__name__}: {exc}",
                )
        self.metrics.stage_seconds.labels("fetch").observe(time.perf_counter() - started)
        ready = [item for item in items if item.data is not None and item.failure is None]
        started = time.perf_counter()
        results = self.enricher.enrich(
            [
                PhotoInput(i.upload["photo_id"], i.data)  # type: ignore[index,arg-type]
                for i in ready
            ]
        )
        self.metrics.stage_seconds.labels("enrich").observe(time.perf_counter() - started)
        for item, result in zip(ready, results, strict=True):
            item.outcome = result
            item.data = None  # the bytes are not needed any more
            if isinstance(result, Failed):
                item.failure = (result.reason, result.stage, result.detail)

    def _fetch(self, upload: dict[str, Any]) -> bytes:
        return self.blobs.fetch(upload["blob"], upload.get("content_sha256"))

    def _build_outputs(self, items: list[Item]) -> None:
        """PhotoEnriched / PhotoFailed records; duplicates are searched in batch order."""
        indexes: dict[str, dedup.Index] = {}
        embeddings: dict[str, str] = {}  # of this batch's photos: not in the table yet
        for item in items:
            if item.failure is not None:
                reason, stage, detail = item.failure
                item.record = self.outputs.failed(item.message, reason, stage, detail, item.upload)
            elif isinstance(item.outcome, Enriched):
                duplicate = self._duplicate_of(item, indexes, embeddings)
                item.record = self.outputs.enriched(item.upload or {}, item.outcome, duplicate)

    def _duplicate_of(
        self, item: Item, indexes: dict[str, dedup.Index], embeddings: dict[str, str]
    ) -> dict[str, Any] | None:
        """Search the user's index as it stands after the batch's earlier photos."""
        assert item.upload is not None and isinstance(item.outcome, Enriched)
        user, photo = item.upload["user_id"], item.upload["photo_id"]
        if user not in indexes:
            indexes[user] = list(self.tables.dup_index.get(user) or [])
        index = [entry for entry in indexes[user] if entry[0] != photo]
        fields = item.outcome.fields

        def stored(photo_id: str) -> str | None:
            found: str | None = embeddings.get(photo_id) or self.tables.embeddings.get(photo_id)
            return found

        duplicate = dedup.find_duplicate(
            index, item.outcome.phash_variants, fields.get("embedding"), stored, self.policy
        )
        indexes[user] = dedup.add_to_index(
            indexes[user], photo, fields["phash"], self.policy.max_photos
        )
        if fields.get("embedding") is not None:
            embeddings[photo] = dedup.pack_embedding(fields["embedding"])
        return duplicate

    async def _send(self, items: list[Item]) -> None:
        """Send every output now (not attached to an offset) and wait for all acknowledgements."""
        started = time.perf_counter()
        pending = []
        for item in items:
            if not item.record:
                continue  # skipped: already done
            value = self._encode(item)
            topic = self.failed_topic if item.failure is not None else self.enriched_topic
            pending.append(await topic.send(key=item.message.key, force=True, value=value))
        await asyncio.gather(*pending)
        self.metrics.stage_seconds.labels("send").observe(time.perf_counter() - started)

    def _encode(self, item: Item) -> bytes:
        """The output's bytes; an enriched record that does not fit its schema (a bug) becomes
        an INTERNAL_ERROR dead letter instead of stopping the batch."""
        if item.failure is not None:
            return self.codec.encode(EventType.PHOTO_FAILED, item.record)
        try:
            return self.codec.encode(EventType.PHOTO_ENRICHED, item.record)
        except EncodeError as exc:
            log.exception("enriched event does not fit its schema")
            item.failure = (FailureReason.INTERNAL_ERROR, "encode_output", str(exc))
            item.record = self.outputs.failed(item.message, *item.failure, item.upload)
            return self.codec.encode(EventType.PHOTO_FAILED, item.record)

    def _record(self, items: list[Item]) -> None:
        """Tables and metrics, each write under its own event (its changelog partition)."""
        now = time.time()
        for item in items:
            if not item.record:
                continue
            with as_current(item.event):
                outcome = self._record_one(item)
            self.metrics.photos.labels(outcome).inc()
            if item.upload is not None:
                uploaded = item.upload["uploaded_at"].timestamp()
                self.metrics.end_to_end_seconds.observe(max(0.0, now - uploaded))

    def _record_one(self, item: Item) -> str:
        if item.failure is not None:
            reason, stage, detail = item.failure
            self.metrics.dead_letters.labels(reason).inc()
            if item.upload is None:
                return "failed"  # nothing to key state by
            new = state.failed_state(item.upload["event_id"], reason, stage, detail)
        else:
            assert item.upload is not None and isinstance(item.outcome, Enriched)
            summary = state.summarise(item.record, item.upload["byte_size"])
            new = state.enriched_state(item.upload["event_id"], self.versions, summary)
            self._index(item)
        user, photo = item.upload["user_id"], item.upload["photo_id"]
        old = self.tables.photo_state.get(photo)
        self.tables.photo_state[photo] = new
        self.tables.user_stats[user] = state.update_stats(
            self.tables.user_stats.get(user), old, new
        )
        return str(new["status"])

    def _index(self, item: Item) -> None:
        assert item.upload is not None and isinstance(item.outcome, Enriched)
        user, photo = item.upload["user_id"], item.upload["photo_id"]
        fields = item.outcome.fields
        self.tables.dup_index[user] = dedup.add_to_index(
            self.tables.dup_index.get(user), photo, fields["phash"], self.policy.max_photos
        )
        if fields.get("embedding") is not None:
            self.tables.embeddings[photo] = dedup.pack_embedding(fields["embedding"])

    def close(self) -> None:
        """Stop the engine thread."""
        self._executor.shutdown(wait=True)
