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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from faust.types import EventT

from streams.contracts.codec import MalformedEventError
from streams.contracts.schemas import FORGET_REQUESTS
from streams.logs import get_logger
from streams.pipeline import Batch, Pipeline, RawMessage, Started, poison
from streams.pipeline.poison import is_transient
from streams.pipeline.similar import SimilarPhotos
from streams.pipeline.stages import name_stage, stage_of
from streams.worker.agent import Delivery, whole
from streams.worker.forgetting import Forgetting
from streams.worker.metrics import WorkerMetrics
from streams.worker.readers import VersionsOf
from streams.worker.recording import Recorder, as_current, events_by_photo
from streams.worker.tables import Tables

log = get_logger("darkroom.worker")


@dataclass
class Poisoned:
    """A batch the pipeline raised on for a reason that is not transient."""

    error: Exception


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
        self.pipeline, self.metrics = pipeline, metrics
        self.forgetting = forgetting or Forgetting(tables, similar)
        self.recorder = Recorder(tables, metrics, versions, similar, self.forgetting)
        self.flush = flush
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
                self.recorder.record(batch, work.events)
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
            self.recorder.record(batch, [event])
        except Exception as error:
            if is_transient(error):
                raise
            name_stage(error, "record")
            dead = poison.quarantined(self.pipeline, message, error)
            await self._send(dead, [event])
            self.recorder.record(dead, [event])
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

    def close(self) -> None:
        """Stop the pipeline threads."""
        self._starting.shutdown(wait=True)
        self._computing.shutdown(wait=True)
