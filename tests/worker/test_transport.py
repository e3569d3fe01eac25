"""The worker's transport: ``drain`` returns only when every table write is acknowledged, and
raises when one was not (Faust's own flush gave up after 0.1 s and never looked); a batch
whose writes are never acknowledged fails at the commit gate's limit instead of keeping the
commits (a rebalance's) waiting for good; the producer
keeps the uploads topic's partitions, which routing a query by key needs; the seek to the
committed offsets after a rebalance also rewinds a partition with nothing committed; and a
seek made while a record is being handed out brings back every record it should."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.config import Settings
from streams.kafka.topics import TopicSpec, ensure_topics
from streams.worker.agent import Delivery, InFlight, consume, whole
from streams.worker.transport import (
    BatchGate,
    ChangelogError,
    GateTimeoutError,
    _DrainableBuffer,
    fresh_records,
    keep_tracked,
    seek_to_committed,
    track_topic,
)
from tests.worker.test_agent import batches
from tests.worker.test_processor import Stream, in_order

Hand = Callable[[int], Awaitable[asyncio.Future[Any]]]


class Channel:
    """Stands in for a changelog topic: ``hand`` decides how record ``n`` is handed over."""

    def __init__(self, hand: Hand) -> None:
        self.hand, self.handed = hand, 0

    async def publish_message(self, fut: Any, wait: bool = False) -> asyncio.Future[Any]:
        self.handed += 1
        return await self.hand(fut.number)


def record(channel: Channel, number: int) -> Any:
    return SimpleNamespace(number=number, message=SimpleNamespace(channel=channel))


async def started(hand: Hand) -> tuple[_DrainableBuffer, Channel]:
    buffer = _DrainableBuffer(loop=asyncio.get_running_loop())
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    return buffer, Channel(hand)


def test_drain_waits_for_a_slow_hand_over_and_for_the_acknowledgement() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        acks = [loop.create_future() for _ in range(3)]

        async def hand(number: int) -> asyncio.Future[Any]:
            await asyncio.sleep(0.3)  # longer than the 0.1 s Faust's flush waited
            return acks[number]

        buffer, channel = await started(hand)
        try:
            for number in range(3):
                buffer.put(record(channel, number))
            drained = asyncio.ensure_future(buffer.drain())
            await asyncio.sleep(1.2)  # every record handed over by now, none acknowledged
            assert channel.handed == 3 and not drained.done()
            acks[0].set_result(None)
            acks[1].set_result(None)
            await asyncio.sleep(0.1)
            assert not drained.done()
            acks[2].set_result(None)
            await asyncio.wait_for(drained, 1)
        finally:
            await buffer.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("where", ["delivery", "hand-over"])
def test_drain_raises_for_a_record_not_delivered_and_the_buffer_goes_on(where: str) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        async def hand(number: int) -> asyncio.Future[Any]:
            ack = loop.create_future()
            if number == 0 and where == "hand-over":
                raise AssertionError("Unrecognized partition")
            if number == 0:
                ack.set_exception(RuntimeError("NotLeaderForPartition"))
            else:
                ack.set_result(None)
            return ack

        buffer, channel = await started(hand)
        try:
            buffer.put(record(channel, 0))
            buffer.put(record(channel, 1))
            with pytest.raises(ChangelogError, match="1 table changelog record"):
                await asyncio.wait_for(buffer.drain(), 2)
            buffer.put(record(channel, 2))  # a failure is reported once, not forever
            await asyncio.wait_for(buffer.drain(), 2)
            assert channel.handed == 3
        finally:
            await buffer.stop()

    asyncio.run(scenario())


class WritesNeverAcknowledged:
    """Stages whose ``deliver`` writes a table record that Kafka never acknowledges (aiokafka
    waiting on a request the broker did not answer) and waits for it, as the worker does."""

    def __init__(self, buffer: _DrainableBuffer, channel: Channel) -> None:
        self.buffer, self.channel = buffer, channel

    async def start(self, events: Any) -> Any:
        return events

    async def compute(self, work: Any) -> None:
        return None

    async def deliver(self, work: Any, computed: None) -> None:
        self.buffer.put(record(self.channel, 0))
        await self.buffer.drain()

    def deliveries(self, work: Any, computed: None) -> AsyncIterator[Delivery]:
        return whole(partial(self.deliver, work, computed), work)

    def abandon(self, work: Any) -> None:
        pass


def test_a_batch_whose_table_writes_are_never_acknowledged_fails_and_frees_the_commit() -> None:
    # once a worker's batch waited for good with the gate held: the rebalance's commit waited
    # behind it, the worker never rejoined its group, and its stop deadline killed it
    limit_s = 0.5

    async def scenario() -> tuple[list[Any], float, list[Any]]:
        loop = asyncio.get_running_loop()
        never = loop.create_future()

        async def hand(number: int) -> asyncio.Future[Any]:
            return never

        buffer, channel = await started(hand)
        gate, fatal = BatchGate(limit_s), []
        stream = Stream(batches(2))

        async def commit() -> float:
            await asyncio.sleep(0.1)  # the batch holds the gate by now
            asked = loop.time()
            async with gate.committing():
                return loop.time() - asked

        committed = asyncio.ensure_future(commit())
        try:
            with pytest.raises(GateTimeoutError):
                await consume(
                    stream,
                    WritesNeverAcknowledged(buffer, channel),
                    batch_size=16,
                    within_s=0.1,
                    in_flight=InFlight(),
                    on_fatal=lambda exc, batch: fatal.append(exc),
                    gate=gate,
                    **in_order(),
                )
            return fatal, await committed, stream.acked
        finally:
            never.cancel()
            await buffer.stop()

    fatal, commit_waited_s, acked = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [type(exc) for exc in fatal] == [GateTimeoutError]  # the worker stops on it
    assert acked == []  # processed again after the restart, or by another worker
    assert commit_waited_s < limit_s + 0.5


@pytest.mark.broker
def test_the_producer_keeps_a_topic_it_never_sends_to(apache_kafka: Settings) -> None:
    uploads, later = apache_kafka.topics.uploaded, f"{apache_kafka.topics.enriched}-later"

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=apache_kafka.kafka.bootstrap)
        await producer.start()
        try:
            app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
            await producer.client.force_metadata_update()
            assert producer.client.cluster.partitions_for_topic(uploads)  # all topics, at first
            # a topic created after the producer started: sending to it makes aiokafka track
            # only the topics it sends to, and the uploads topic drops out of its metadata
            ensure_topics(apache_kafka, [TopicSpec(later, 1, 1)])
            await producer.send_and_wait(later, b"x")
            await producer.client.force_metadata_update()
            assert producer.client.cluster.partitions_for_topic(uploads) is None
            await track_topic(app, uploads)
            await producer.client.force_metadata_update()
            assert producer.client.cluster.partitions_for_topic(uploads) == {0, 1, 2, 3}
        finally:
            await producer.stop()

    asyncio.run(scenario())


@pytest.mark.broker
def test_a_batch_for_a_topic_sent_to_before_another_is_tracked_is_delivered(
    kafka: Settings,
) -> None:
    # aiokafka tracks a topic it sends to only if the topic was missing from its metadata: a
    # changelog written to first was never tracked, the first routed query tracked the uploads
    # topic, the changelog dropped out of the metadata, and a batch of table writes handed over
    # just before waited for a leader for Faust's 20-minute producer timeout
    changelog, uploads = kafka.topics.enriched, kafka.topics.uploaded

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka.bootstrap, linger_ms=500)
        await producer.start()
        try:
            app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
            await producer.client.force_metadata_update()  # every topic, at first
            await keep_tracked(producer, changelog)  # what the worker's producer does first
            delivery = await producer.send(changelog, b"table write", partition=0)
            await track_topic(app, uploads)  # a routed query, while the batch lingers
            await asyncio.wait_for(delivery, 10)
        finally:
            await producer.stop()

    asyncio.run(scenario())


@pytest.mark.broker
def test_a_partition_with_nothing_committed_goes_back_to_its_beginning(kafka: Settings) -> None:
    # Faust drops what it fetched during a rebalance and then seeks to the committed offsets;
    # aiokafka's own seek_to_committed left a partition with none where fetching had got to
    uploads = TopicPartition(kafka.topics.uploaded, 0)
    other = TopicPartition(kafka.topics.uploaded, 1)  # committed at 2
    unnamed = TopicPartition(kafka.topics.uploaded, 2)  # nothing committed, not to rewind

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka.bootstrap)
        await producer.start()
        try:
            for n in range(3):
                for tp in (uploads, other, unnamed):
                    await producer.send_and_wait(tp.topic, b"%d" % n, partition=tp.partition)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.kafka.bootstrap,
            group_id=f"darkroom-test-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign([uploads, other, unnamed])
            read = 0
            while read < 9:
                batches = await consumer.getmany(timeout_ms=10_000)
                assert batches, "nothing fetched within 10 s"
                read += sum(map(len, batches.values()))
            await consumer.commit({other: 2})
            assert [await consumer.position(tp) for tp in (uploads, other, unnamed)] == [3, 3, 3]

            sought: list[TopicPartition] = []
            committed = await seek_to_committed(consumer, lambda tp: tp != unnamed, sought.append)

            assert committed == {uploads: None, other: 2, unnamed: None}
            assert sorted(sought) == [uploads, other]
            assert await consumer.position(uploads) == 0  # read again: nothing is lost
            assert await consumer.position(other) == 2
            assert await consumer.position(unnamed) == 3  # not named: left where it was
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_a_seek_while_a_record_is_handed_out_brings_back_every_record_below_it() -> None:
    """Faust's fetch loop (faust/transport/consumer.py ``_drain_messages``), as it is: a record
    at or past the read offset goes to the agent, and only then is its offset noted as read.
    Here the agent seeks the partition back to 0 while record 5 is being handed out."""
    tp = "uploads/1"
    seeks: dict[Any, int] = {}
    fetches: list[dict[Any, int]] = []
    handed: dict[Any, int] = {}
    read_offset: dict[Any, Any] = {}
    delivered: list[int] = []

    async def fetch(offsets: list[int]) -> Any:
        fetches.append(dict(seeks))  # stamped as the consumer thread does
        for offset in offsets:
            yield tp, offset

    async def agent_gets(offset: int) -> None:
        delivered.append(offset)
        if offset == 5 and not seeks:  # a jump: the agent seeks back (Faust's seek)
            seeks[tp] = 1
            read_offset[tp] = None

    async def drain(offsets: list[int]) -> None:
        records = fresh_records(fetch(offsets), seeks, lambda: fetches[-1], handed, read_offset)
        async for partition, offset in records:
            last = read_offset.get(partition)
            if last is None or offset >= last:
                await agent_gets(offset)
                read_offset[partition] = offset  # after the hand-over: lands on the seek's
            # else: dropped as already read

    async def run() -> None:
        await drain([5, 6, 7])  # fetched before the seek: 6 and 7 are stale
        await drain(list(range(8)))  # the seek's fetch

    asyncio.run(run())
    assert delivered == [5, 0, 1, 2, 3, 4, 5, 6, 7]
