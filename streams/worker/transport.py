"""Darkroom's Faust transport: the aiokafka one with a configurable fetch wait and exactly-once
that holds for the outputs too. It registers as the ``darkroom://`` broker scheme through the
``faust.transports`` entry point in pyproject.toml.

Fetch wait: Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. The embedded
broker holds every Fetch for the full wait even when data is there, so with Faust's value each
fetch takes 1.5 s (end-to-end median 822 ms measured). Here it comes from the client profile.

Exactly-once (``processing_guarantee="exactly_once"``): Faust runs one transactional producer
per input partition and commits each partition's offsets in that partition's transaction. But
its ``TransactionManager.send`` picks the transaction from the *destination* partition as the
consumer's metadata knows it; for a topic the worker does not consume (photos.enriched,
photos.failed) that is unknown, so the record goes out through the plain producer, outside any
transaction (measured on Kafka 4.4: ``transactional_id=None`` for both output topics; upstream:
faust-streaming/faust#177 "Producer is sending messages outside a transaction", #517 "Duplicate
messages despite exactly_once"). After a ``kill -9`` the re-run batch then emitted its outputs a
second time, visible to ``read_committed`` readers. Two changes make it exact:

* an output goes into the transaction of the partition its *upload* came from (the current
  event's), the one that commits that upload's offset; a send with no current event is refused;
* Faust commits on a timer, which could land between a batch's sends and its acknowledgements and
  commit the outputs without the offsets. ``BatchGate`` lets a commit run only between batches,
  and bounds how long a batch may keep a commit (a rebalance's included) waiting.

Routing a web query by key (``app.topic_route``) asks the *producer's* metadata for the topic's
partitions. aiokafka's producer fetches every topic's metadata only until its first send; from
then on it tracks just the topics it sends to, so the uploads topic (consumed, never produced
to) dropped out and every routed query failed with a TypeError inside Faust (measured on Kafka
4.4; tansu answers with every topic whatever was asked, which hid it). ``track_topic`` keeps a
topic in the producer's metadata for good.

That was not all: aiokafka tracks a topic it sends to only when the topic was missing from its
metadata at the send. Until the first topic is tracked, its metadata holds every topic, so the
changelogs the worker wrote to first were never tracked; the first ``track_topic`` (the first
routed query) made aiokafka ask for the tracked topics alone, and those changelogs dropped out.
A batch of table writes already handed over then had no known leader, aiokafka asked for
metadata again and again without them, and the batch waited for Faust's 20-minute producer
timeout: the worker's batch held the commit gate meanwhile (the stall seen in stress runs as an
owner that did not answer, and as table writes that never reached the broker). Every topic the
producer sends to is now tracked before the send (``keep_tracked``). Seen on both brokers (the
tansu in use answers only the topics asked for, unlike the one measured above).

Table writes: Faust buffers each changelog record (``send_soon``) and its ``Producer.flush``
gives up waiting after 0.1 s without a send, and never looks at whether a record was delivered;
a batch's offsets could then be committed before its table writes were in Kafka, or after
they failed. ``drain`` waits until every buffered record was handed over *and* acknowledged, and
raises if one was not.

Seeks: Faust's ``seek`` calls aiokafka from the app's thread, though aiokafka runs in the
consumer thread's event loop; here it runs in that loop. Two more ways a seek lost uploads,
both measured on the embedded broker when a worker took over from one killed with kill -9:

* at the end of every rebalance Faust seeks the stream partitions to their committed offsets
  with aiokafka's ``seek_to_committed``, which seeks only a partition whose committed offset is
  above 0. Faust drops what it fetched during the rebalance (the old generation's), so a
  partition its previous owner had not committed yet kept its position past them: 8 of its 32
  uploads never came. Such partitions are sought to their beginning (``seek_to_committed``);
* Faust hands out a fetch's records one by one, and a seek can come in between. It delivered
  the rest, stale, counted them as read, and then dropped the same offsets when the seek
  fetched them again: a partition sought back to offset 8 over and over never delivered 8 and 9.
  The consumer thread counts each partition's seeks as it makes them and stamps every fetch
  with the counts; a record fetched before its partition's latest seek is not handed out.
  And Faust's fetch loop notes a record's offset as read only *after* handing it to the agent
  (``_drain_messages``), which can wait while the agent seeks: the stale offset then lands on
  top of the seek's, and every record the seek brings back below it is dropped as read (a
  takeover stalled that way in CI: "expected 0, got 9", then nothing). So the first record of a
  partition after a seek clears Faust's read offset (``fresh_records``); the agent's
  continuity drops anything it already had.

Offsets: the consumer leaves to the agent (streams/worker/continuity.py) which jumps in a stream
partition's offsets are gaps, resets the agent's expected offsets at each seek, and lets it seek
back and drop held-back events from Faust's unacknowledged set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from faust.exceptions import ProducerSendError
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as driver
from faust.transport.producer import ProducerBuffer
from faust.types.tuples import FutureMessage

from streams.errors import OperationError
from streams.logs import get_logger

log = get_logger("darkroom.worker")


class ChangelogError(OperationError):
    """A table write's changelog record was not delivered (the batch is not acknowledged)."""


class GateTimeoutError(OperationError):
    """A batch held the commit gate past its limit (its sends or table writes unacknowledged)."""


class BatchGate:
    """A batch (sends to acknowledgements) and an offset commit never overlap.

    A batch holds the gate for at most ``limit_s``: once a worker's table writes stopped
    reaching the broker (aiokafka waiting on a request the broker never answered, for up to
    Faust's 20-minute ``producer_request_timeout``) and its batch held the gate meanwhile; the
    rebalance's commit waited behind it, the worker never rejoined its group, and its stop
    deadline killed it. Past the limit the batch's wait is cancelled and it fails
    (``GateTimeoutError``): fatal and unacknowledged, so the worker stops in order and the
    batch is processed again after the restart or by another worker. A commit waits for the
    gate (at most one batch's limit) and holds it as long as it takes."""

    SLOW_S = 1.0  # a wait or hold longer than this is logged

    def __init__(self, limit_s: float | None = None) -> None:
        self._lock = asyncio.Lock()
        self.limit_s = limit_s

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the gate for a batch (at most ``limit_s``, see the class docstring)."""
        await self._acquire("batch")
        bound = asyncio.timeout(self.limit_s)
        started = time.monotonic()
        try:
            async with bound:
                yield
        except TimeoutError as exc:
            if not bound.expired():
                raise
            raise GateTimeoutError(
                f"a batch held the commit gate for more than {self.limit_s:g} s (its outputs or "
                "table writes were not acknowledged by Kafka): the batch is not acknowledged"
            ) from exc
        finally:
            self._release("batch", started)

    @asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        """Hold the gate for an offset commit (after the batch that holds it, if any)."""
        await self._acquire("commit")
        started = time.monotonic()
        try:
            yield
        finally:
            self._release("commit", started)

    async def _acquire(self, what: str) -> None:
        started = time.monotonic()
        await self._lock.acquire()
        waited = time.monotonic() - started
        if waited > self.SLOW_S:
            log.info("commit gate: waited for it", waiter=what, seconds=round(waited, 3))

    def _release(self, what: str, started: float) -> None:
        self._lock.release()
        held = time.monotonic() - started
        if held > self.SLOW_S:
            log.info("commit gate: held long", holder=what, seconds=round(held, 3))


# A batch may hold the gate for this share of the group's rebalance timeout: past the
# rebalance timeout the group drops a member whose revocation (which commits) has not ended.
GATE_SHARE_OF_REBALANCE = 0.5


def batch_gate(app: Any) -> BatchGate:
    """The app's gate (created on first use, inside the worker's event loop)."""
    gate: BatchGate | None = getattr(app, "_darkroom_batch_gate", None)
    if gate is None:
        limit_s = float(app.conf.broker_rebalance_timeout) * GATE_SHARE_OF_REBALANCE
        gate = app._darkroom_batch_gate = BatchGate(limit_s)
    return gate


async def track_topic(app: Any, topic: str) -> None:
    """Make ``app``'s producer keep ``topic`` in its metadata; wait until it is there.

    Cheap once done (aiokafka answers with a finished future for a topic it already tracks)."""
    producer = app.producer._ensure_producer()  # NotReady before the producer started
    await keep_tracked(producer, topic)


async def keep_tracked(producer: Any, topic: str) -> None:
    """Make aiokafka's ``producer`` track ``topic`` in its metadata (see the module docstring:
    a topic sent to but not tracked drops out of it, and a batch for it waits for good)."""
    client = producer.client
    if topic not in client._topics:
        await client.add_topic(topic)


def group_coordinator_known(app: Any) -> bool:
    """Whether the worker's consumer knows its group's coordinator now.

    aiokafka forgets the coordinator when a heartbeat or a commit fails (the broker gone, a
    right revoked) and keeps looking for it; meanwhile nothing is fetched for the group nor
    committed, though every partition stays assigned: /healthz must not say ok then (it did for
    the 45 s a broker was stopped). Read from the web's thread: one attribute, a stale answer
    at worst."""
    try:
        consumer = app.consumer._thread._ensure_consumer()
    except Exception:  # not started yet, or stopping: not consuming either way
        return False
    coordinator = getattr(consumer, "_coordinator", None)
    return getattr(coordinator, "coordinator_id", None) is not None


class _DrainableBuffer(ProducerBuffer):
    """Faust's producer buffer, which also knows what it handed over and whether it arrived."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._sending = 0  # taken off the queue, not yet handed to the Kafka client
        self._deliveries: list[asyncio.Future[Any]] = []
        self._awaited: list[asyncio.Future[Any]] = []  # what drain() waits for now
        self._failures: list[BaseException] = []

    async def _send_pending(self, fut: FutureMessage) -> None:
        self._sending += 1
        try:
            delivery = await fut.message.channel.publish_message(fut, wait=False)
            self._deliveries.append(asyncio.ensure_future(delivery))
        except Exception as exc:  # kept for drain(): the buffer must keep going
            self._failures.append(exc)
        finally:
            self._sending -= 1

    async def drain(self) -> None:
        """Until everything put so far is acknowledged by Kafka; raise if something was not."""
        while self.size or self._sending:  # nothing left only between batches' writes: poll
            await asyncio.sleep(0.005)
        deliveries, self._deliveries = self._deliveries, []
        self._awaited = deliveries
        failures, self._failures = self._failures, []
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        failures += [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise ChangelogError(
                f"{len(failures)} table changelog record(s) not delivered: {failures[0]!r}"
            ) from failures[0]


class _Producer(driver.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # set at the end of Faust's __init__, so replaced after it (producer_threaded is off)
        self.buffer = _DrainableBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        # every topic sent to stays in the metadata of the aiokafka producer that sends it
        sender = (
            self._transaction_producers.get(transactional_id)
            if transactional_id
            else self._ensure_producer()
        )
        if sender is not None:  # a missing transaction producer: Faust's send says so
            await keep_tracked(sender, topic)
        return await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )


# A drain that takes longer than this is logged (then again as often) with the producer's state.
DRAIN_REPORT_S = 10.0


async def drain(app: Any) -> None:
    """Wait until every table write so far is in Kafka (see the module docstring)."""
    buffer = app.producer.buffer
    assert isinstance(buffer, _DrainableBuffer), "the worker runs on the darkroom:// transport"
    started = time.monotonic()
    waiting = asyncio.ensure_future(buffer.drain())
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=DRAIN_REPORT_S)
            if done:
                return waiting.result()
            log.warning(  # what the producer waits on, for the record (not understood yet)
                "table writes not acknowledged yet",
                seconds=round(time.monotonic() - started, 1),
                **producer_state(app, buffer),
            )
    finally:
        waiting.cancel()


def producer_state(app: Any, buffer: _DrainableBuffer) -> dict[str, Any]:
    """The buffer's and aiokafka's producer's state: what a stuck table write waits on."""
    state: dict[str, Any] = {
        "buffered": buffer.size,
        "handing_over": buffer._sending,
        "unacknowledged": sum(not d.done() for d in [*buffer._awaited, *buffer._deliveries]),
        # the task that hands buffered records to aiokafka (and any other of the buffer's)
        "buffer_tasks_running": sum(not f.done() for f in getattr(buffer, "_futures", ())),
    }
    try:
        producer = app.producer._ensure_producer()
        sender = producer._sender
        state["sender_running"] = not sender._sender_task.done()
        state["in_flight_nodes"] = sorted(sender._in_flight)
        state["muted_partitions"] = sorted(str(tp) for tp in sender._muted_partitions)
        state["batches"] = {
            str(tp): len(batches) for tp, batches in producer._message_accumulator._batches.items()
        }
        state["connections"] = {
            str(node): {
                "connected": conn.connected(),
                "requests": [type(r[1]).__name__ for r in conn._requests],
                "reader_running": conn._read_task is not None and not conn._read_task.done(),
            }
            for node, conn in producer.client._conns.items()
        }
    except Exception as exc:  # diagnostics only: aiokafka's internals may differ
        state["producer_state_error"] = repr(exc)
    return state


class _TransactionManager(TransactionManager):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        if self.consumer.key_partition(topic, key, partition) is not None:
            # a co-partitioned topic (a table's changelog): Faust's own routing is right
            return await super().send(topic, key, value, partition, timestamp, headers)
        event = current_event()
        if event is None:
            raise ProducerSendError(
                f"exactly_once: a record for {topic} was sent outside any upload's "
                "transaction (no current event)"
            )
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        return await self.producer.send(
            topic,
            key,
            value,
            partition,
            timestamp,
            headers,
            transactional_id=f"{self.app.conf.id}-{group}-{source.partition}",
        )


async def seek_to_committed(
    consumer: Any, rewind: Callable[[Any], bool], sought: Callable[[Any], None]
) -> dict[Any, Any]:
    """Seek the partitions of aiokafka's ``consumer`` to their committed offsets, as its own
    ``seek_to_committed`` does, except that a partition ``rewind`` names whose committed offset
    is none (or 0) goes back to its beginning instead of staying where fetching had got to
    (see the module docstring). ``sought(tp)`` is called as each partition is sought, in the
    same step. Returns the committed offsets."""
    committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
    uncommitted = [tp for tp, offset in committed.items() if not offset and rewind(tp)]
    beginnings = await consumer.beginning_offsets(uncommitted) if uncommitted else {}
    for tp, offset in committed.items():  # no await from here on: a fetch sees all or none
        target = offset if offset and offset > 0 else beginnings.get(tp)
        if target is not None:
            consumer.seek(tp, target)
            sought(tp)
    return committed


class _Fetched(dict[Any, Any]):
    """Fetched records, and how many times each partition had been sought when they were."""

    def __init__(self, records: Any, seeks: dict[Any, int]) -> None:
        super().__init__(records)
        self.seeks = seeks


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeks: dict[Any, int] = {}  # partition -> times sought, counted as it seeks

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", 1500))
        return consumer

    async def seek_to_committed(self) -> Any:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Any:
        acks_enabled_for = self.app.topics.acks_enabled_for
        return await seek_to_committed(
            self._ensure_consumer(), lambda tp: acks_enabled_for(tp.topic), self._sought
        )

    async def seek_here(self, partition: Any, offset: int) -> None:
        """aiokafka's seek, called in this thread's event loop (see ``_Consumer._seek``)."""
        await self.call_thread(self._seek_here, partition, offset)

    async def _seek_here(self, partition: Any, offset: int) -> None:
        self._ensure_consumer().seek(partition, offset)
        self._sought(partition)

    def _sought(self, partition: Any) -> None:
        self.seeks[partition] = self.seeks.get(partition, 0) + 1

    async def _fetch_records(self, *args: Any, **kwargs: Any) -> Any:
        records = await super()._fetch_records(*args, **kwargs)
        return _Fetched(records, dict(self.seeks))  # in the same step as the fetch


async def fresh_records(
    records: AsyncIterator[tuple[Any, Any]],
    seeks: dict[Any, int],
    fetched_seeks: Callable[[], dict[Any, int]],
    handed: dict[Any, int],
    read_offset: MutableMapping[Any, Any],
) -> AsyncIterator[tuple[Any, Any]]:
    """The records of one fetch that are not stale (see the module docstring). ``seeks``: each
    partition's seek count now; ``fetched_seeks()``: the counts when the fetch was made (known
    once its first record is out); ``handed``: each partition's count when its last record was
    handed out, kept across fetches. The first record after a seek clears Faust's
    ``read_offset`` of its partition, which a record handed out before the seek may have set."""
    fetched: dict[Any, int] | None = None
    async for tp, message in records:
        if fetched is None:
            fetched = fetched_seeks()
        now = seeks.get(tp, 0)
        if now != fetched.get(tp, 0):
            continue  # fetched before the partition's latest seek
        if handed.get(tp, 0) != now:
            read_offset[tp] = None
            handed[tp] = now
        yield tp, message


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # Darkroom's agent decides which offset jumps are gaps (streams.worker.continuity).
    def _continuity(self) -> Any:
        return getattr(self.app, "continuity", None)

    async def _seek(self, partition: Any, offset: int) -> None:
        # Faust calls aiokafka's seek from the app's thread while aiokafka runs in the consumer
        # thread's loop: the fetcher's wake-up future was resolved from the wrong thread and a
        # sought partition could stay silent (a takeover then made no outcome for minutes).
        thread = self._thread
        assert isinstance(thread, _ConsumerThread)
        await thread.seek_here(partition, offset)

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        records = await super()._getmany(active_partitions, timeout)
        self._fetched_seeks = getattr(records, "seeks", {})
        return records

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        thread = self._thread
        assert isinstance(thread, _ConsumerThread)
        records = super().getmany(timeout)
        async for tp, message in fresh_records(
            records, thread.seeks, lambda: self._fetched_seeks, self._handed, self._read_offset
        ):
            yield tp, message

    @property
    def _handed(self) -> dict[Any, int]:
        # partition -> its seek count when its last record was handed out
        handed: dict[Any, int] = self.__dict__.setdefault("_handed_seeks", {})
        return handed

    async def perform_seek(self) -> None:
        await super().perform_seek()
        continuity = self._continuity()
        if continuity is None:
            return
        topics = self.app.topics
        streams = {tp for tp in self.assignment() if topics.acks_enabled_for(tp.topic)}
        offsets = {tp: self._committed_offset.get(tp) for tp in streams}
        unread = [tp for tp, offset in offsets.items() if offset is None]
        if unread:  # nothing committed (or 0): reading starts at the beginning
            offsets.update(await self.earliest_offsets(*unread))
        continuity.reset(offsets)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        started = time.monotonic()
        continuity = self._continuity()
        if continuity is not None:
            continuity.forget(revoked)
        await super().on_partitions_revoked(revoked)
        log.info(
            "partitions revoked",
            partitions=self._streams_of(revoked),
            seconds=round(time.monotonic() - started, 3),
        )

    async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        started = time.monotonic()
        await super().on_partitions_assigned(assigned, generation_id)
        log.info(  # tables opened; their recovery goes on in Faust's recovery service
            "partitions assigned",
            partitions=self._streams_of(assigned),
            generation=generation_id,
            seconds=round(time.monotonic() - started, 3),
        )

    def _streams_of(self, tps: Any) -> list[int]:
        acks_enabled_for = self.app.topics.acks_enabled_for
        return sorted(tp.partition for tp in tps if acks_enabled_for(tp.topic))

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        if self._continuity() is None:
            await super()._add_gap(tp, offset_from, offset_to)

    async def accept_gap(self, tp: Any, first: int, last: int) -> None:
        """Offsets ``first``..``last`` hold no record: count them as done."""
        await super()._add_gap(tp, first, last)

    def forget(self, events: Any) -> None:
        """Held-back events: they come again after a seek, so Faust must not wait for them."""
        for event in events:
            self._unacked_messages.discard(event.message)

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        async with batch_gate(self.app).committing():
            committed: bool = await super().commit(topics, start_new_transaction)
            return committed


class Transport(driver.Transport):
    """aiokafka transport: configurable fetch wait, outputs inside their upload's transaction."""

    Consumer = _Consumer
    Producer = _Producer
    TransactionManager = _TransactionManager

    async def _create_topic(
        self, owner: Any, client: Any, topic: str, partitions: int, replication: int, **kw: Any
    ) -> None:
        """Create ``topic`` only if the cluster does not list it.

        Faust skips a topic its client's metadata lists, but that metadata holds only the topics
        the client tracks, and Kafka authorizes CreateTopics before it looks for the topic: a
        worker without CREATE (clusters where an administrator creates the topics, `darkroom
        topics plan`) failed on Faust's leader topic although it existed."""
        if topic in (await client.fetch_all_metadata()).topics():
            return
        await super()._create_topic(owner, client, topic, partitions, replication, **kw)
