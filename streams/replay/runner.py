"""The replay loop: read each partition's range, filter, pace, hand to the sink, checkpoint.

It reads with a consumer that is only *assigned* partitions: it never joins or commits for any
consumer group, the workers' included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition

from streams.contracts.codec import Codec, MalformedEventError
from streams.errors import DarkroomError, ExitCode
from streams.kafka.clients import KafkaReadError, message_headers
from streams.replay.checkpoint import Checkpoint
from streams.replay.positions import PartitionRange
from streams.replay.selection import Filters
from streams.replay.sinks import Sink, SourceMessage

STALL_TIMEOUT_S = 15.0

Progress = Callable[[int, int], None]  # (partition, offsets done in its range)


class ReplayInterruptedError(DarkroomError):
    """Ctrl-C: what was written is flushed and checkpointed, so --resume continues from it."""

    exit_code = ExitCode.INTERRUPTED


@dataclass
class PartitionReport:
    """What happened in one partition."""

    partition: int
    range: PartitionRange
    read: int = 0
    selected: int = 0


@dataclass
class ReplaySummary:
    """What a replay did, for the closing table."""

    replay_id: str
    partitions: list[PartitionReport] = field(default_factory=list)
    seconds: float = 0.0
    limit_reached: bool = False


class RateLimiter:
    """At most ``rate`` messages per second (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def read_range(
    consumer: Consumer, topic: str, start: int, end: int, partition: int
) -> Iterator[Message]:
    """Messages of [start, end) in order (the end existed when the replay began)."""
    if start >= end:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    try:
        last_progress = time.monotonic()
        while True:
            message = consumer.poll(0.5)
            if message is None:
                if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                    raise KafkaReadError(
                        f"{topic}/{partition}: no record between {start} and "
                        f"{end} for {STALL_TIMEOUT_S:g} s"
                    )
                continue
            error = message.error()
            if error is not None:
                raise KafkaReadError(f"{topic}/{partition}: {error.str()}")
            offset = message.offset() or 0
            last_progress = time.monotonic()
            if offset >= end:
                return
            if offset >= start:
                yield message
            if offset >= end - 1:
                return
    finally:
        consumer.unassign()


class Replayer:
    """Runs one replay over resolved ranges."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        codec: Codec,
        sink: Sink,
        topic: str,
        ranges: list[PartitionRange],
        checkpoint: Checkpoint,
        filters: Filters,
        limit: int | None,
        rate: float | None,
        batch: int,
        on_progress: Progress = lambda _p, _n: None,
    ) -> None:
        self.consumer, self.codec, self.sink, self.topic = consumer, codec, sink, topic
        self.ranges, self.checkpoint, self.filters = ranges, checkpoint, filters
        self.limit, self.batch, self.on_progress = limit, batch, on_progress
        self.limiter = RateLimiter(rate)

    def run(self) -> ReplaySummary:
        """Replay every range; resumable at any point through the checkpoint."""
        started = time.monotonic()
        summary = ReplaySummary(self.checkpoint.replay_id)
        selected_total = 0
        for part in self.ranges:
            report = PartitionReport(part.partition, part)
            summary.partitions.append(report)
            begin = max(part.start, self.checkpoint.next_offsets.get(part.partition, part.start))
            self.on_progress(part.partition, begin - part.start)
            unflushed = 0
            for message in read_range(self.consumer, self.topic, begin, part.end, part.partition):
                offset = message.offset() or 0
                report.read += 1
                source = self._source(message)
                # an undecodable message has no content to match a filter against
                wanted = (
                    not self.filters.any
                    if source.event is None
                    else self.filters.match(source.event.record)
                )
                if wanted:
                    if self.limit is not None and selected_total >= self.limit:
                        summary.limit_reached = True
                        break
                    self.limiter.wait()
                    self.sink.write(source)
                    report.selected += 1
                    selected_total += 1
                    unflushed += 1
                self.checkpoint.next_offsets[part.partition] = offset + 1
                if unflushed >= self.batch:
                    self._commit()
                    unflushed = 0
                self.on_progress(part.partition, offset + 1 - part.start)
            self._commit()
            if summary.limit_reached:
                break
        summary.seconds = time.monotonic() - started
        return summary

    def _commit(self) -> None:
        """Outputs acknowledged first, then the checkpoint moves."""
        self.sink.flush()
        self.checkpoint.save()

    def _source(self, message: Message) -> SourceMessage:
        value = message.value() or b""
        try:
            event = self.codec.decode(value)
        except MalformedEventError:
            event = None
        return SourceMessage(
            self.topic,
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            value,
            message_headers(message),
            event,
        )
