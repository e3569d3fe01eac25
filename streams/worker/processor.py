"""The worker's side of a batch: run the shared pipeline, send its outputs, record the tables.

Order matters for crash safety: outputs are sent and *acknowledged* before the tables change,
and the tables' changelog records are acknowledged before the batch's offsets are (by the
agent, after ``deliver`` returns; see streams/worker/agent.py). At least once, a crash anywhere
re-delivers the batch; the re-run emits the same event ids (consumers dedupe on them) and the
tables, written once, end equal to a clean run's. Exactly once, each output is sent as its
upload's current event, which puts it in the transaction that commits that upload's offset
(streams/worker/transport.py): a crash aborts outputs, table writes and offsets together.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from faust import streams as faust_streams
from faust.types import EventT

from streams.contracts.codec import MalformedEventError
from streams.contracts.schemas import FORGET_REQUESTS
from streams.logs import get_logger
from streams.pipeline import Batch, Photo, Pipeline, RawMessage, Started, poison
from streams.pipeline.keys import photo_key, split_key
from streams.pipeline.outputs import FORGOTTEN
from streams.pipeline.people import Change
from streams.pipeline.poison import is_transient
from streams.pipeline.similar import SimilarPhotos
from streams.pipeline.stages import name_stage, stage_of
from streams.worker import state
from streams.worker.agent import Delivery, whole
from streams.worker.forgetting import Forgetting
from streams.worker.metrics import WorkerMetrics
from streams.worker.readers import VersionsOf
from streams.worker.tables import Tables, partition_rows

log = get_logger("darkroom.worker")
SWEEP_EVERY_S = 600.0  # how often a partition's expired forgotten markers are deleted


@dataclass
class Poisoned:
    """A batch the pipeline raised on for a reason that is not transient."""

    error: Exception


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event: table writes take their changelog partition from
    it, and inside a batch Faust leaves none set (it raises AssertionError otherwise)."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def raw_message(event: EventT[Any]) -> RawMessage:
    """The consumed message as the pipeline takes it."""
    message = event.message
    pairs = message.headers or []
    if isinstance(pairs, Mapping):
        pairs = list(pairs.items())
    headers = tuple(
        (str(key), value if isinstance(value, bytes) else str(value).encode())
        for key, value in pairs
    )
    return RawMessage(
        message.topic, message.partition, message.offset, message.key, message.value or b"", headers
    )


def events_by_photo(batch: Batch, events: Sequence[EventT[Any]]) -> dict[int, EventT[Any]]:
    """id(photo) -> the event it came from (the pipeline keeps the batch's order)."""
    return {id(photo): event for photo, event in zip(batch.photos, events, strict=True)}


@dataclass
class Work:
    """A batch on its way through the processor: its events and the pipeline's started batch."""

    events: Sequence[EventT[Any]]
    started: Started
    since: float  # time.perf_counter() at its start


class BatchProcessor:
    """Everything the agent does with a batch of events, in three steps: ``start`` (decode the
    events, fetch the bytes, begin decoding the photos), ``compute`` (inference and outputs)
    and ``deliver`` (send, record). The agent starts batch n+1 while batch n computes."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        tables: Tables,
        metrics: WorkerMetrics,
        versions: VersionsOf,
        topics: Mapping[str, Any],
        flush: Callable[[], Awaitable[None]],
        similar: SimilarPhotos | None = None,
        forgetting: Forgetting | None = None,
    ) -> None:
        """``topics``: the Faust topics for "enriched", "failed" and "shadow". ``flush``: hand
        every buffered table write to Kafka and wait for it (Faust buffers changelog records;
        they must be in Kafka before the batch's offsets move). ``similar``: the similar-photo
        matrices in memory, told of each embedding recorded. ``forgetting``: what a request to
        forget does to the tables (by default, with the markers kept 30 days)."""
        self.pipeline, self.tables, self.metrics = pipeline, tables, metrics
        self.similar = similar
        self.forgetting = forgetting or Forgetting(tables, similar)
        self._swept: dict[int, float] = {}  # partition -> when its old markers were deleted
        self.flush = flush
        self.versions = versions
        self.topics = dict(topics)
        # threads: blob I/O and the engine never block the event loop (heartbeats); one for
        # starting a batch and one for computing one, so the two overlap
        self._starting = ThreadPoolExecutor(1, thread_name_prefix="pipeline-start")
        self._computing = ThreadPoolExecutor(1, thread_name_prefix="pipeline")

    def is_request(self, event: EventT[Any]) -> bool:
        """Whether ``event`` is a request to forget (the agent cuts batches around them)."""
        try:
            decoded = self.pipeline.codec.decode(event.message.value or b"")
        except MalformedEventError:
            return False  # the pipeline dead-letters it in its batch
        return decoded.event_type in FORGET_REQUESTS

    async def process(self, events: Sequence[EventT[Any]]) -> None:
        """Handle ``events`` completely, one step after the other; return only when every
        output is acknowledged and the tables hold the batch. Raises if that cannot be done
        (the agent then stops without acknowledging the batch)."""
        work = await self.start(events)
        async for deliver, _events in self.deliveries(work, await self.compute(work)):
            await deliver()

    async def start(self, events: Sequence[EventT[Any]]) -> Work:
        """Decode the events, skip what is done, fetch the bytes, begin decoding the photos."""
        self.metrics.batch_size.observe(len(events))
        self.metrics.in_flight.inc(len(events))
        since = time.perf_counter()
        try:
            messages = [raw_message(event) for event in events]
            loop = asyncio.get_running_loop()
            started = await loop.run_in_executor(self._starting, self.pipeline.start, messages)
        except BaseException:
            self.metrics.in_flight.dec(len(events))
            raise
        return Work(events, started, since)

    async def compute(self, work: Work) -> Batch | Poisoned:
        """Inference, duplicates and the encoded outputs (nothing sent); ``Poisoned`` when the
        pipeline raised for a reason that is not transient (``deliver`` then goes photo by
        photo)."""
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._computing, self.pipeline.finish, work.started)
        except Exception as error:
            if is_transient(error):
                self.abandon(work)
                raise
            self.pipeline.abandon(work.started)
            return Poisoned(error)
        except BaseException:
            self.abandon(work)
            raise

    async def deliveries(self, work: Work, computed: Batch | Poisoned) -> AsyncIterator[Delivery]:
        """What the agent delivers, each under the commit gate with its events'
        acknowledgements: the whole batch; or, for a poisoned batch, each event alone, computed
        here (outside the gate) after the one before was sent and recorded: its tables are what
        the next one's duplicate search reads. An event that still raises becomes its
        INTERNAL_ERROR dead letter (streams/pipeline/poison.py)."""
        if not isinstance(computed, Poisoned):
            async for delivery in whole(partial(self.deliver, work, computed), work.events):
                yield delivery
            return
        self.metrics.poisoned_batches.inc()
        log.error(
            "batch raised; retrying its photos one by one",
            batch=len(work.events),
            stage=stage_of(computed.error),
            exc_info=computed.error,
        )
        try:
            for event in work.events:
                message = raw_message(event)
                yield (
                    partial(self._deliver_alone, event, message, await self._alone(message)),
                    [event],
                )
        finally:
            self._done(work)

    async def deliver(self, work: Work, batch: Batch) -> None:
        """Send the outputs and wait for their acknowledgements, then record the tables and
        wait for theirs. A bug met while recording (rarer still than one in the pipeline) is
        retried photo by photo here, inside the gate."""
        try:
            await self._send(batch, work.events)
            try:
                self._record(batch, work.events)
            except Exception as error:
                if is_transient(error):
                    raise
                self.metrics.poisoned_batches.inc()
                log.error("recording raised; retrying its photos one by one", exc_info=error)
                for event in work.events:
                    message = raw_message(event)
                    await self._deliver_alone(event, message, await self._alone(message))
            await self.flush()
        finally:
            self._done(work)

    async def _alone(self, message: RawMessage) -> Batch:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._computing, poison.alone, self.pipeline, message)

    async def _deliver_alone(self, event: EventT[Any], message: RawMessage, batch: Batch) -> None:
        """One event's own batch: sent and recorded (a photo whose recording raises: its dead
        letter, sent and recorded instead), its table writes flushed."""
        await self._send(batch, [event])
        try:
            self._record(batch, [event])
        except Exception as error:
            if is_transient(error):
                raise
            name_stage(error, "record")
            dead = poison.quarantined(self.pipeline, message, error)
            await self._send(dead, [event])
            self._record(dead, [event])
        await self.flush()

    def abandon(self, work: Work) -> None:
        """A started batch that will not be delivered (a stop, a rebalance, a failure)."""
        self.pipeline.abandon(work.started)
        self._done(work)

    def _done(self, work: Work) -> None:
        if work.since:  # once per batch
            self.metrics.in_flight.dec(len(work.events))
            self.metrics.stage_seconds.labels("batch").observe(time.perf_counter() - work.since)
            work.since = 0.0

    async def _send(self, batch: Batch, events: Sequence[EventT[Any]]) -> None:
        """Send every output now, each as its upload's event, and wait for all acknowledgements."""
        started = time.perf_counter()
        event_of = events_by_photo(batch, events)
        pending = []
        for photo in batch.outputs():
            assert photo.topic is not None
            topic = self.topics[photo.topic]
            with as_current(event_of[id(photo)]):
                sent = await topic.send(key=photo.message.key, value=photo.value, force=True)
            pending.append(sent)
        for photo, value in batch.shadows():
            # in the upload's transaction too: a crash re-runs the experiment, never doubles it
            with as_current(event_of[id(photo)]):
                sent = await self.topics["shadow"].send(
                    key=photo.message.key, value=value, force=True
                )
            pending.append(sent)
        await asyncio.gather(*pending)
        for photo in batch.photos:
            if photo.shadows and photo.enriched is not None:
                self.metrics.observe_variants(photo.enriched.variants)
        self.metrics.stage_seconds.labels("send").observe(time.perf_counter() - started)

    def _record(self, batch: Batch, events: Sequence[EventT[Any]]) -> None:
        """Tables and metrics, each write under its own event (its changelog partition)."""
        now = time.time()
        event_of = events_by_photo(batch, events)
        by_user: dict[str, EventT[Any]] = {}
        by_photo: dict[str, EventT[Any]] = {}
        for photo in batch.photos:
            if photo.skipped:
                self.metrics.photos.labels("skipped").inc()
                continue
            event = event_of[id(photo)]
            if photo.request is not None:
                with as_current(event):
                    self.forgetting.apply(photo.request)
                self.metrics.photos.labels("forgotten").inc()
                continue
            with as_current(event):
                outcome = self._record_one(photo)
            self.metrics.photos.labels(outcome).inc()
            if photo.upload is not None:
                user_id, photo_id = photo.upload["user_id"], photo.upload["photo_id"]
                by_user[user_id] = by_photo[photo_key(user_id, photo_id)] = event
                uploaded = photo.upload["uploaded_at"].timestamp()
                self.metrics.end_to_end_seconds.observe(max(0.0, now - uploaded))
        for user, index in batch.findings.indexes.items():
            with as_current(by_user[user]):
                self.tables.dup_index[user] = index
        for key, packed in batch.findings.embeddings.items():
            user, photo_id = split_key(key)
            with as_current(by_photo[key]):
                self.tables.embeddings[key] = packed
            if self.similar is not None:
                self.similar.added(user, photo_id, packed)
        for key, packed in batch.findings.blocks.items():
            with as_current(by_photo[key]):
                self.tables.dct_blocks[key] = packed
        for key, group in batch.shots.groups.items():
            with as_current(by_user[split_key(key)[0]]):
                if group is not None:
                    self.tables.dup_groups[key] = group
                elif self.tables.dup_groups.get(key) is not None:
                    del self.tables.dup_groups[key]
        for user, people in batch.people.states.items():
            with as_current(by_user[user]):
                self.tables.people[user] = people
        for change in batch.people.changes:
            with as_current(by_user[change[1]]):
                self._person_photos(change)
        self._sweep(events)

    def _sweep(self, events: Sequence[EventT[Any]]) -> None:
        """Now and then, a partition's forgotten markers past their time, deleted under an event
        of the partition (their tombstones go to it)."""
        now = time.time()
        for event in events:
            partition = event.message.partition
            if now - self._swept.get(partition, 0.0) < SWEEP_EVERY_S:
                continue
            self._swept[partition] = now
            with as_current(event):
                markers = partition_rows(self.tables.forgotten, partition)
                swept = self.forgetting.sweep(markers, datetime.now(UTC))
            if swept:
                log.info("forgotten markers expired", partition=partition, deleted=swept)

    def _person_photos(self, change: Change) -> None:
        """One change of the per-person photo lists (streams.pipeline.people.Change)."""
        photos = self.tables.person_photos
        kind, user, person = change[:3]
        key = state.person_key(user, person)
        if kind == "add":
            photos[key] = state.with_photo(photos.get(key), change[3], present=True)
        elif kind == "merge":
            into = state.person_key(user, change[3])
            photos[into] = state.merged(photos.get(into), photos.get(key))
        if kind != "add" and photos.get(key) is not None:  # merged, or dropped (too many)
            del photos[key]

    def _record_one(self, photo: Photo) -> str:
        failed = photo.failed
        if failed is not None:
            self.metrics.dead_letters.labels(failed.reason).inc()
            if photo.upload is None:
                return "failed"  # nothing to key state by
            if failed.reason in FORGOTTEN:
                return "refused"  # an upload of what was forgotten: nothing of it is kept
            new = state.failed_state(
                photo.upload["event_id"],
                failed.reason,
                failed.stage,
                failed.detail,
                user_id=photo.upload["user_id"],
                attempt=photo.attempt,
            )
        else:
            assert photo.upload is not None and photo.record is not None
            summary = state.summarise(photo.record, photo.fetched_bytes or 0)
            if photo.people is not None:  # what a re-drive keeps (streams.pipeline.people)
                summary["people"] = photo.people.to_json()
            versions = self.versions(photo.upload["user_id"])
            new = state.enriched_state(
                photo.upload["event_id"],
                versions,
                summary,
                user_id=photo.upload["user_id"],
                attempt=photo.attempt,
            )
        user, photo_id = photo.upload["user_id"], photo.upload["photo_id"]
        key = photo_key(user, photo_id)
        old = self.tables.photo_state.get(key)
        self.tables.photo_state[key] = new
        self.tables.user_stats[user] = state.update_stats(
            self.tables.user_stats.get(user), old, new
        )
        lost, gained = state.tag_changes(old, new)
        for tag, present in [(t, False) for t in lost] + [(t, True) for t in gained]:
            key = state.tag_key(user, tag)
            self.tables.tag_photos[key] = state.with_photo(
                self.tables.tag_photos.get(key), photo_id, present
            )
        return str(new["status"])

    def close(self) -> None:
        """Stop the pipeline threads."""
        self._starting.shutdown(wait=True)
        self._computing.shutdown(wait=True)
