"""Turn a selection's start and end into exact offsets per partition.

The end is fixed at the start of the run (the high watermark then), so a busy topic does not make
a replay run forever. A time becomes the first offset whose record timestamp is at or after it:
the broker's ``offsets_for_times`` answer is checked (the record there is at or after T and the
one before is earlier) and, when wrong (the embedded broker always answers 0), replaced by a
binary search on record timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.kafka.clients import KafkaReadError, watermarks
from streams.replay.selection import Bound, ReplayUsageError

READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition; low/high are the watermarks at the start."""

    partition: int
    start: int
    end: int
    low: int
    high: int

    @property
    def count(self) -> int:
        """How many offsets the range spans."""
        return self.end - self.start


class OffsetResolver:
    """Watermarks, timestamp lookups and the binary-search fallback, for one topic."""

    def __init__(self, consumer: Consumer, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic
        self.fallbacks = 0  # how many time lookups the broker answered wrongly

    def watermarks(self, partition: int) -> tuple[int, int]:
        """(low, high) now."""
        return watermarks(self.consumer, TopicPartition(self.topic, partition), READ_TIMEOUT_S)

    def resolve(self, partition: int, start: Bound, end: Bound) -> PartitionRange:
        """The partition's range; ReplayUsageError if the bounds make no sense there."""
        low, high = self.watermarks(partition)
        first = self._position(partition, start, low, high, default=low, name="start")
        last = self._position(partition, end, low, high, default=high, name="end")
        if last < first:
            raise ReplayUsageError(
                f"partition {partition}: the end ({end.describe('end')} = offset {last}) is "
                f"before the start ({start.describe('beginning')} = offset {first})"
            )
        return PartitionRange(partition, first, last, low, high)

    def _position(
        self, partition: int, bound: Bound, low: int, high: int, *, default: int, name: str
    ) -> int:
        if bound.offset is not None:
            if bound.offset > high:
                raise ReplayUsageError(
                    f"partition {partition}: {name} offset {bound.offset} is past the end "
                    f"(offsets {low}..{high})"
                )
            return max(bound.offset, low)
        if bound.millis is not None:
            return self.offset_for_time(partition, bound.millis, low, high)
        return default

    def offset_for_time(self, partition: int, millis: int, low: int, high: int) -> int:
        """First offset in [low, high] whose record timestamp is >= ``millis`` (high if none)."""
        (answer,) = self.consumer.offsets_for_times(
            [TopicPartition(self.topic, partition, millis)], timeout=READ_TIMEOUT_S
        )
        offset = high if answer.offset < 0 else answer.offset
        if self._is_first_at_or_after(partition, offset, millis, low, high):
            return offset
        self.fallbacks += 1
        lo, hi = low, high
        while lo < hi:
            mid = (lo + hi) // 2
            if self.timestamp_at(partition, mid) >= millis:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _is_first_at_or_after(
        self, partition: int, offset: int, millis: int, low: int, high: int
    ) -> bool:
        if not low <= offset <= high:
            return False
        if offset < high and self.timestamp_at(partition, offset) < millis:
            return False
        return offset == low or self.timestamp_at(partition, offset - 1) < millis

    def timestamp_at(self, partition: int, offset: int) -> int:
        """The timestamp (ms) of the record at ``offset``."""
        self.consumer.assign([TopicPartition(self.topic, partition, offset)])
        try:
            while True:
                message = self.consumer.poll(READ_TIMEOUT_S)
                if message is None:
                    raise KafkaReadError(
                        f"{self.topic}/{partition}: no record at offset {offset} "
                        f"within {READ_TIMEOUT_S:g} s"
                    )
                error = message.error()
                if error is not None:
                    raise KafkaReadError(f"{self.topic}/{partition}: {error.str()}")
                if (message.offset() or 0) >= offset:
                    return int(message.timestamp()[1])
        finally:
            self.consumer.unassign()
