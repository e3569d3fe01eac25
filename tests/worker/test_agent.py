"""The agent's overlap of batches: batch n+1 is started (fetched, decoding) while batch n
computes, yet nothing of n+1 is sent before n is acknowledged, and a failure or a stop leaves
the started batch unacknowledged and abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from streams.engine import Enricher
from streams.worker.agent import Delivery, InFlight, consume, whole
from streams.worker.transport import BatchGate
from tests.pipeline.test_batch import upload_bytes
from tests.worker.test_processor import (
    Event,
    Message,
    Stream,
    events,
    in_order,
    processor,
    until,
)


class Recorded:
    """Stages that log every step; ``compute`` of the first batch waits until the second batch
    has been started, which only an agent that overlaps them lets happen."""

    def __init__(self, gate: BatchGate, fail_compute: int | None = None) -> None:
        self.gate, self.fail_compute = gate, fail_compute
        self.log: list[tuple[str, int]] = []
        self.second_started = asyncio.Event()
        self.abandoned: list[int] = []

    @staticmethod
    def first(work: Sequence[Any]) -> int:
        return int(work[0].message.offset)

    async def start(self, events: Sequence[Any]) -> Sequence[Any]:
        self.log.append(("start", self.first(events)))
        if self.first(events) > 0:
            self.second_started.set()
        return events

    async def compute(self, work: Sequence[Any]) -> None:
        if self.first(work) == 0:
            await asyncio.wait_for(self.second_started.wait(), 5)
        if self.first(work) == self.fail_compute:
            raise RuntimeError("inference broke")
        self.log.append(("compute", self.first(work)))

    async def deliver(self, work: Sequence[Any], computed: None) -> None:
        assert self.gate._lock.locked(), "delivered without the gate: a commit could cut in"
        self.log.append(("deliver", self.first(work)))

    def deliveries(self, work: Any, computed: None) -> AsyncIterator[Delivery]:
        return whole(partial(self.deliver, work, computed), work)

    def abandon(self, work: Sequence[Any]) -> None:
        self.abandoned.append(self.first(work))


def batches(*sizes: int) -> list[list[Any]]:
    """Consecutive batches of partition 0, offsets from 0."""
    out, offset = [], 0
    for size in sizes:
        out.append(
            [Event(Message("photos.uploaded", 0, offset + i, b"u", b"v")) for i in range(size)]
        )
        offset += size
    return out


class LoggingStream(Stream):
    def __init__(self, batches: Sequence[list[Any]], log: list[tuple[str, int]]) -> None:
        super().__init__(batches)
        self.log = log

    async def ack(self, event: Any) -> bool:
        self.log.append(("ack", event.message.offset))
        return await super().ack(event)


def run_consume(stream: Stream, stages: Any, gate: BatchGate, fatal: list[Any]) -> None:
    async def scenario() -> None:
        await consume(
            stream,
            stages,
            batch_size=16,
            within_s=0.1,
            in_flight=InFlight(),
            on_fatal=lambda exc, batch: fatal.append((exc, batch)),
            gate=gate,
            **in_order(),
        )

    asyncio.run(scenario())


def test_the_next_batch_starts_while_one_computes_but_is_sent_only_after_its_acks() -> None:
    gate = BatchGate()
    stages = Recorded(gate)
    stream = LoggingStream(batches(2, 2), stages.log)
    run_consume(stream, stages, gate, [])
    assert stages.log == [
        ("start", 0),
        ("start", 2),  # while batch 0 computes
        ("compute", 0),
        ("deliver", 0),
        ("ack", 0),
        ("ack", 1),
        ("compute", 2),  # batch 2 computes and is delivered only after batch 0's acks
        ("deliver", 2),
        ("ack", 2),
        ("ack", 3),
    ]


def test_a_failed_batch_leaves_the_started_one_abandoned_and_unacknowledged() -> None:
    gate = BatchGate()
    stages = Recorded(gate, fail_compute=0)
    stream = LoggingStream(batches(2, 2), stages.log)
    fatal: list[Any] = []
    with pytest.raises(RuntimeError, match="inference broke"):
        run_consume(stream, stages, gate, fatal)
    assert stream.acked == []
    assert stages.abandoned == [2]  # its decoding stopped, its pixels freed
    assert [batch[0].message.offset for _, batch in fatal] == [0]


def test_a_redelivered_upload_started_before_its_first_delivery_is_enriched_once(
    enricher: Enricher, tmp_path: Path
) -> None:
    # batch 2 is started (its skip rule reading the tables) before batch 1 is recorded: the
    # pipeline asks again before computing it, so the repeat is skipped, not enriched twice
    proc, enriched, state = processor(enricher, tmp_path)

    async def scenario() -> None:
        first = await proc.start(events(upload_bytes()))
        again = await proc.start(events(upload_bytes()))
        delivering = asyncio.create_task(proc.deliver(first, await proc.compute(first)))
        await asyncio.wait_for(until(lambda: enriched.acks), 30)
        enriched.acks[0].set_result(None)
        await asyncio.wait_for(delivering, 10)
        batch = await proc.compute(again)
        assert [p.skipped for p in batch.photos] == [True]
        await proc.deliver(again, batch)

    asyncio.run(scenario())
    proc.close()
    assert len(enriched.sent) == 1
    assert state.user_stats["u1"]["photos"] == 1
