"""Each partition's uploads processed in offset order, none skipped, none twice.

Faust's consumer does not guarantee that. When a table recovery ends, it seeks the stream
partitions back to their committed offsets while records fetched *before* the seek are still
being handed to the agent. Measured on Kafka 4.4 (kill -9 test, Faust's read offsets logged):
after the seek to offset 43 the stale records 77..84 arrived, Faust took the jump for a "gap"
(it counts offsets it never saw as done, which transaction markers need) and then dropped the
re-fetched 43..76 as already read. The agent processed 77..84 before 49..76 had ever run, and
in another run the group's committed offset passed three uploads no worker ever processed.
Batches delivered twice (45..49, then 45..49 again) came from the same race.

So the agent admits a batch through ``Continuity``: per partition it knows the next offset it
must process (from the committed offset at each seek). An event at that offset is processed;
one below it was processed already and is only acknowledged; one above it is a jump. A jump is
real only if the broker holds no committed record between the two offsets (transaction
markers, aborted records, retention); then the range is handed to Faust as a gap and the event
processed. Otherwise the partition is sought back to the missing offset and its later events
are held back unacknowledged: the seek delivers them again, in order.

A jump shows a hole only when a later record arrives: when Faust loses a partition's *last*
records, nothing shows it, and the partition stays silent until a new upload comes. Two ways
Faust did that around a rebalance are fixed in its consumer (streams/worker/transport.py:
measured, a takeover processed 5 and 11 uploads of two partitions and then nothing); as a net
for any other, ``recover_lost`` looks, while the agent is idle, for a partition the consumer
has fetched past its next offset without that upload reaching the agent, seeks it back and
says so in a warning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from faust.types import TP, EventT

from streams.config import Settings
from streams.kafka.clients import make_consumer
from streams.logs import get_logger

log = get_logger("darkroom.worker")

# (partition, offset) -> offset of the first committed record at or after it (None: none yet)
FirstRecord = Callable[[TP, int], Awaitable[int | None]]


@dataclass
class Admission:
    """What to do with one batch."""

    process: list[EventT[Any]] = field(default_factory=list)
    again: list[EventT[Any]] = field(default_factory=list)  # done before: acknowledge only
    held: list[EventT[Any]] = field(default_factory=list)  # after a hole: neither
    gaps: list[tuple[TP, int, int]] = field(default_factory=list)  # empty ranges, inclusive
    rewinds: dict[TP, int] = field(default_factory=dict)  # seek these back to the offset


class Continuity:
    """The next offset to process, per partition of the uploads topic."""

    def __init__(
        self, first_record: FirstRecord, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.first_record, self.clock = first_record, clock
        self.next: dict[TP, int] = {}
        self.heard: dict[TP, float] = {}  # when each partition last delivered, or was sought

    def reset(self, offsets: Mapping[TP, int]) -> None:
        """After a seek to ``offsets`` (the committed ones, or where reading starts)."""
        self.next = dict(offsets)
        self.heard = dict.fromkeys(offsets, self.clock())

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions revoked: until the next seek their events are held back."""
        for tp in partitions:
            self.next.pop(tp, None)
            self.heard.pop(tp, None)

    async def recover_lost(self, consumer: Any, quiet_s: float) -> list[TP]:
        """Seek back every partition whose next upload was fetched but never delivered: the
        consumer's high watermark is past the next offset, nothing of the partition came for
        ``quiet_s``, and the broker holds a committed record at or after that offset (not
        only transaction markers). Call it only while the agent is idle and no rebalance or
        recovery is under way. Returns the partitions sought back. A broker that does not
        answer about one partition leaves it for the next call: an exception out of the app's
        timer would crash the worker."""
        lost = []
        for tp, expected in list(self.next.items()):
            high = consumer.highwater(tp)
            if high is None or high <= expected or self.clock() - self.heard[tp] < quiet_s:
                continue
            try:
                first = await self.first_record(tp, expected)
            except (TimeoutError, KafkaException) as exc:
                log.warning(
                    "could not ask the broker for a quiet partition's next record; asking again",
                    partition=f"{tp.topic}/{tp.partition}",
                    error=repr(exc),
                )
                continue
            if first is None or tp not in self.next:  # markers only, or revoked meanwhile
                continue
            if first > expected:  # nothing up to ``first``: that part is a real gap
                await consumer.accept_gap(tp, expected, first - 1)
                self.next[tp] = first
            log.warning(
                "uploads fetched but never delivered to the agent; reading the partition again",
                partition=f"{tp.topic}/{tp.partition}",
                offset=self.next[tp],
                high_watermark=high,
            )
            await consumer.seek(tp, self.next[tp])
            self.heard[tp] = self.clock()
            lost.append(tp)
        return lost

    async def settle(self, events: Sequence[EventT[Any]], consumer: Any) -> Admission:
        """``admit`` and carry out its gaps, rewinds and held events on Darkroom's consumer
        (streams.worker.transport): what is left is processing and acknowledging."""
        admission = await self.admit(events)
        for tp, first, last in admission.gaps:
            await consumer.accept_gap(tp, first, last)
        for tp, offset in admission.rewinds.items():
            await consumer.seek(tp, offset)
        consumer.forget(admission.held)
        return admission

    async def admit(self, events: Sequence[EventT[Any]]) -> Admission:
        """Sort ``events`` into what may be processed now and what may not."""
        admission = Admission()
        now = self.clock()
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            expected = self.next.get(tp)
            if expected is not None:
                self.heard[tp] = now
            if tp in admission.rewinds or expected is None:  # before its first seek
                admission.held.append(event)
            elif offset == expected:
                self._take(admission, event)
            elif offset < expected:
                admission.again.append(event)
            else:
                await self._jump(admission, event, expected)
        return admission

    def _take(self, admission: Admission, event: EventT[Any]) -> None:
        admission.process.append(event)
        self.next[event.message.tp] = event.message.offset + 1

    async def _jump(self, admission: Admission, event: EventT[Any], expected: int) -> None:
        tp, offset = event.message.tp, event.message.offset
        first = await self.first_record(tp, expected)
        if first is None or first >= offset:  # nothing in between: a real gap
            admission.gaps.append((tp, expected, offset - 1))
            self._take(admission, event)
            return
        if first > expected:  # nothing up to ``first``: that part is a real gap
            admission.gaps.append((tp, expected, first - 1))
            self.next[tp] = first
        log.info(  # after most restarts (Faust's seek race), handled: not an operator's problem
            "uploads delivered ahead of the next one; reading the partition again from it",
            partition=f"{tp.topic}/{tp.partition}",
            expected=self.next[tp],
            got=offset,
        )
        admission.rewinds[tp] = self.next[tp]
        admission.held.append(event)


def first_committed_record(settings: Settings, timeout_s: float = 10.0) -> FirstRecord:
    """A ``FirstRecord`` that asks the broker with a consumer of its own (read_committed).

    Blocking, so it runs in a thread; it is asked only when a partition's offsets jump."""

    def read(tp: TP, offset: int) -> int | None:
        own: dict[str, Any] = {"isolation.level": "read_committed", "enable.partition.eof": True}
        consumer = make_consumer(settings, None, **own)
        try:
            consumer.assign([TopicPartition(tp.topic, tp.partition, offset)])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is None:
                    return message.offset()
                if error.code() == KafkaError._PARTITION_EOF:
                    return None
            raise TimeoutError(f"no answer for {tp.topic}/{tp.partition}@{offset}")
        finally:
            consumer.close()

    async def first(tp: TP, offset: int) -> int | None:
        return await asyncio.get_running_loop().run_in_executor(None, read, tp, offset)

    return first
