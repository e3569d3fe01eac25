"""The agent's admission of a batch: in offset order per partition, none skipped, none twice.

The scenario tests replay what the kill -9 test logged on Kafka 4.4 (streams/worker/continuity.py):
after the seek to 43, stale records 77..84 arrived before 49..76 had been processed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from faust.types import TP

from streams.config import Settings
from streams.kafka.clients import make_consumer
from streams.worker.continuity import Admission, Continuity, first_committed_record
from tests.worker.publishing import produce

UPLOADS = "photos.uploaded"
P0, P1 = TP(UPLOADS, 0), TP(UPLOADS, 1)


@dataclass
class Message:
    tp: TP
    offset: int


@dataclass
class Event:
    message: Message


def at(tp: TP, *offsets: int) -> list[Any]:
    return [Event(Message(tp, offset)) for offset in offsets]


def offsets(events: Iterable[Any]) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in events]


class Log:
    """Which offsets of each partition hold a committed record (the broker's side)."""

    def __init__(self, records: dict[TP, Iterable[int]]) -> None:
        self.records = {tp: sorted(found) for tp, found in records.items()}
        self.asked: list[tuple[TP, int]] = []

    async def first_record(self, tp: TP, offset: int) -> int | None:
        self.asked.append((tp, offset))
        return next((o for o in self.records[tp] if o >= offset), None)


class Consumer:
    """Records what the agent asks of Darkroom's consumer; ``highwaters``: how far it fetched."""

    def __init__(self, highwaters: dict[TP, int] | None = None) -> None:
        self.gaps: list[tuple[TP, int, int]] = []
        self.seeks: list[tuple[TP, int]] = []
        self.forgotten: list[Any] = []
        self.highwaters = highwaters or {}

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)

    async def accept_gap(self, tp: TP, first: int, last: int) -> None:
        self.gaps.append((tp, first, last))

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def forget(self, events: list[Any]) -> None:
        self.forgotten += events


def admit(continuity: Continuity, events: list[Any]) -> Admission:
    return asyncio.run(continuity.admit(events))


def test_in_order_batches_are_processed_and_a_repeat_only_acknowledged() -> None:
    continuity = Continuity(Log({P0: range(100)}).first_record)
    continuity.reset({P0: 43, P1: 0})
    first = admit(continuity, [*at(P0, 43, 44, 45), *at(P1, 0, 1)])
    assert offsets(first.process) == [(0, 43), (0, 44), (0, 45), (1, 0), (1, 1)]
    repeat = admit(continuity, at(P0, 44, 45, 46))  # the same records delivered again
    assert offsets(repeat.again) == [(0, 44), (0, 45)] and offsets(repeat.process) == [(0, 46)]
    assert not repeat.held and not repeat.rewinds


def test_stale_records_after_the_seek_are_held_and_the_partition_read_again() -> None:
    log = Log({P0: range(100), P1: range(100)})
    continuity = Continuity(log.first_record)
    continuity.reset({P0: 43, P1: 10})
    assert offsets(admit(continuity, at(P0, 43, 44, 45, 46, 47, 48)).process)[-1] == (0, 48)
    stale = admit(continuity, [*at(P0, 77, 78, 79), *at(P1, 10)])
    assert offsets(stale.held) == [(0, 77), (0, 78), (0, 79)]
    assert stale.rewinds == {P0: 49} and offsets(stale.process) == [(1, 10)]
    assert log.asked == [(P0, 49)]  # the broker holds 49: a hole, not a gap
    again = admit(continuity, at(P0, *range(49, 85)))  # what the seek brings
    assert offsets(again.process) == [(0, o) for o in range(49, 85)]


def test_a_jump_over_offsets_without_records_is_a_gap_faust_may_commit_over() -> None:
    # transaction markers or aborted records: the broker has nothing at 20..22
    continuity = Continuity(Log({P0: [*range(20), *range(23, 40)]}).first_record)
    continuity.reset({P0: 18})
    admission = admit(continuity, at(P0, 18, 19, 23, 24))
    assert offsets(admission.process) == [(0, 18), (0, 19), (0, 23), (0, 24)]
    assert admission.gaps == [(P0, 20, 22)] and not admission.rewinds


def test_records_deleted_by_retention_are_a_gap_up_to_the_first_kept_one() -> None:
    continuity = Continuity(Log({P0: range(30, 60)}).first_record)  # 0..29 deleted
    continuity.reset({P0: 5})
    admission = admit(continuity, at(P0, 40))  # stale, and 30..39 exist
    assert admission.gaps == [(P0, 5, 29)] and admission.rewinds == {P0: 30}
    assert offsets(admit(continuity, at(P0, 30, 31)).process) == [(0, 30), (0, 31)]


def test_events_of_a_partition_before_its_first_seek_are_held() -> None:
    continuity = Continuity(Log({P0: range(10)}).first_record)
    admission = admit(continuity, at(P0, 3))
    assert offsets(admission.held) == [(0, 3)] and not admission.process
    continuity.reset({P0: 3})
    continuity.forget([P0])  # revoked
    assert offsets(admit(continuity, at(P0, 3)).held) == [(0, 3)]


def test_settle_hands_gaps_rewinds_and_held_events_to_the_consumer() -> None:
    continuity = Continuity(Log({P0: [0, 1, 5, 6, 7], P1: range(10)}).first_record)
    continuity.reset({P0: 0, P1: 0})
    consumer = Consumer()
    events = [*at(P0, 0, 1, 5), *at(P1, 4, 5)]
    admission = asyncio.run(continuity.settle(events, consumer))
    assert consumer.gaps == [(P0, 2, 4)] and consumer.seeks == [(P1, 0)]
    assert consumer.forgotten == admission.held and offsets(admission.held) == [(1, 4), (1, 5)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_fetched_past_its_next_upload_and_quiet_is_read_again() -> None:
    # measured: a takeover processed P0@0..5 and P1@16..20, then Faust had dropped the rest
    clock = Clock()
    log = Log({P0: range(8), P1: range(32)})
    continuity = Continuity(log.first_record, clock)
    continuity.reset({P0: 0, P1: 16})
    admit(continuity, [*at(P0, *range(6)), *at(P1, *range(16, 21))])
    consumer = Consumer({P0: 8, P1: 32})

    clock.now += 4.9  # not quiet long enough: the records may still be on their way
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == []
    clock.now += 0.2
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == [P0, P1]
    assert consumer.seeks == [(P0, 6), (P1, 21)]
    assert offsets(admit(continuity, at(P0, 6, 7)).process) == [(0, 6), (0, 7)]  # no jump
    clock.now += 10
    consumer.seeks.clear()
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == [P1]  # P0 is done


def test_a_quiet_partition_is_left_alone_when_nothing_is_missing() -> None:
    clock = Clock()
    # P0: all read; P1: only transaction markers after 10 (nothing committed to deliver)
    continuity = Continuity(Log({P0: range(5), P1: range(10)}).first_record, clock)
    continuity.reset({P0: 5, P1: 10})
    consumer = Consumer({P0: 5, P1: 12})
    clock.now += 60
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == []
    assert consumer.seeks == [] and consumer.gaps == []


def test_records_deleted_before_the_missing_one_are_a_gap_then_it_is_read_again() -> None:
    clock = Clock()
    continuity = Continuity(Log({P0: range(30, 40)}).first_record, clock)
    continuity.reset({P0: 5})
    consumer = Consumer({P0: 40})
    clock.now += 6
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == [P0]
    assert consumer.gaps == [(P0, 5, 29)] and consumer.seeks == [(P0, 30)]


def test_a_broker_that_does_not_answer_leaves_the_partition_for_the_next_look() -> None:
    clock = Clock()
    log = Log({P0: range(8), P1: range(8)})
    silent = {P0}

    async def first_record(tp: TP, offset: int) -> int | None:
        if tp in silent:
            raise TimeoutError(f"no answer for {tp}")
        return await log.first_record(tp, offset)

    continuity = Continuity(first_record, clock)
    continuity.reset({P0: 2, P1: 3})
    consumer = Consumer({P0: 8, P1: 8})
    clock.now += 6
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == [P1]  # no raise
    silent.clear()
    clock.now += 6
    assert asyncio.run(continuity.recover_lost(consumer, quiet_s=5.0)) == [P0, P1]
    assert consumer.seeks == [(P1, 3), (P0, 2), (P1, 3)]


@pytest.mark.broker
def test_the_broker_says_where_the_next_record_is(kafka: Settings) -> None:
    produce(kafka, [(b"u", b"a"), (b"u", b"b")])
    topic = kafka.topics.uploaded
    consumer = make_consumer(kafka)
    try:  # the partition key "u" went to
        ends = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(4)
        ]
    finally:
        consumer.close()
    tp = TP(topic, next(p for p, (_, end) in enumerate(ends) if end == 2))
    first = first_committed_record(kafka)

    async def ask() -> list[int | None]:
        return [await first(tp, 0), await first(tp, 1), await first(tp, 2)]

    assert asyncio.run(ask()) == [0, 1, None]
