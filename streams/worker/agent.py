"""The agent's loop and the worker's stop: nothing acknowledged that was not done.

Faust's ``take_events`` acknowledges a batch in a ``finally``: an exception while processing it
still moved the offsets past it, and a restarted agent went on with the next batch, so those
uploads were lost. Here batches come from ``noack_take`` and each event is acknowledged only
after its batch was delivered (outputs acknowledged, tables written). Anything else leaves the
batch unacknowledged: Faust commits only up to the first unacknowledged offset, so the batch is
delivered again after a restart. An exception other than a rebalance's cancellation is fatal:
the worker stops (exit status 1) rather than carry on behind a hole it cannot fill. A batch's
delivery and acknowledgements hold the transport's ``BatchGate``, so an offset commit (on
Faust's timer) never sees half a batch. What a batch may contain is decided first, in offset
order per partition (streams/worker/continuity.py); then a batch is cut before and after each
run of requests to forget (``cut``), so that a deletion is recorded after the uploads before it
and before those after it are looked at (streams/worker/forgetting.py).

Batches overlap where that is safe: batch n+1 is started (``Stages.start``: fetched, decoding)
while batch n computes; computing and delivering go one batch at a time, in order. A started
batch that will not be delivered (n failed, a stop) is abandoned, never acknowledged.

A stop (SIGTERM, SIGINT, or fatal) has a deadline: past ``worker.shutdown_timeout_s`` the
process exits at once with status 1, naming the batches it abandoned (which were not
acknowledged, so another worker or the restart enriches them again).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import faust
from faust.types import EventT

from streams.logs import get_logger
from streams.worker.continuity import Continuity
from streams.worker.transport import BatchGate

log = get_logger("darkroom.worker")

ABANDONED_EXIT_STATUS = 1
E = TypeVar("E")  # an event, or whatever stands for one in a test


def describe(events: Sequence[EventT[Any]]) -> str:
    """'3 uploads: photos.uploaded/0@12..14' (for logs and the abandon message)."""
    spans: dict[tuple[str, int], list[int]] = {}
    for event in events:
        message = event.message
        spans.setdefault((message.topic, message.partition), []).append(message.offset)
    parts = [f"{t}/{p}@{min(o)}..{max(o)}" for (t, p), o in sorted(spans.items())]
    return f"{len(events)} uploads: {', '.join(parts)}"


class InFlight:
    """The batches being processed now, if any (what a stop would abandon), and when the last
    one was done (streams/worker/lag.py exports both)."""

    def __init__(self) -> None:
        self.batches: list[Sequence[EventT[Any]]] = []
        self.last_done = 0.0  # Unix time the last batch was acknowledged

    def oldest_age(self, now: float) -> float:
        """Seconds since the record time of the oldest upload taken and not yet answered."""
        stamps = [
            event.message.timestamp
            for batch in self.batches
            for event in batch
            if event.message.timestamp
        ]
        return max(0.0, now - min(stamps)) if stamps else 0.0

    def __str__(self) -> str:
        return " and ".join(map(describe, self.batches)) or "no batch"


# One delivery: a step that sends and records (waiting for every acknowledgement), and the
# events it answers, acknowledged right after it under the same hold of the commit gate.
Delivery = tuple[Callable[[], Awaitable[None]], Sequence[EventT[Any]]]


async def whole(
    step: Callable[[], Awaitable[None]], events: Sequence[EventT[Any]]
) -> AsyncIterator[Delivery]:
    """A batch's one delivery: ``step`` for all its ``events``."""
    yield step, events


class Stages(Protocol):
    """A batch's steps as the agent runs them (streams/worker/processor.py)."""

    async def start(self, events: Sequence[EventT[Any]]) -> Any:
        """Fetch and begin decoding; no effect anyone else sees."""

    async def compute(self, work: Any) -> Any:
        """Inference and outputs, nothing sent."""

    def deliveries(self, work: Any, computed: Any) -> AsyncIterator[Delivery]:
        """The batch's deliveries, in order: usually one for the whole batch; one per event
        for a batch that had to be retried photo by photo (each computed before it is
        yielded, outside the gate)."""

    def abandon(self, work: Any) -> None:
        """Drop a started batch."""


def cut(events: Sequence[E], is_request: Callable[[E], bool]) -> list[list[E]]:
    """``events`` in order, cut before and after each run of requests to forget."""
    parts: list[list[E]] = []
    kinds: list[bool] = []
    for event in events:
        kind = is_request(event)
        if not parts or kinds[-1] != kind:
            parts.append([])
            kinds.append(kind)
        parts[-1].append(event)
    return parts


async def consume(
    stream: Any,
    stages: Stages,
    *,
    batch_size: int,
    within_s: float,
    in_flight: InFlight,
    on_fatal: Callable[[BaseException, Sequence[EventT[Any]]], None],
    gate: BatchGate,
    continuity: Continuity,
    consumer: Any,
    is_request: Callable[[EventT[Any]], bool] = lambda _event: False,
) -> None:
    """Process batches of ``stream``; acknowledge each event only after its batch is done.

    Each batch is first admitted by ``continuity``: events the consumer delivered out of order
    or twice are not processed (streams/worker/continuity.py). Batch n+1 is started (fetched,
    decoding) while batch n computes; batches are computed and delivered one at a time, in
    order, and nothing of n+1 is sent before n is acknowledged."""
    previous: asyncio.Task[None] | None = None
    work: Any = None  # started, not yet handed to a task
    try:
        async for events in stream.noack_take(batch_size, within=within_s):
            admission = await continuity.settle(events, consumer)
            parts = cut(admission.process, is_request) or [[]]
            for number, batch in enumerate(parts):
                again = admission.again if number == len(parts) - 1 else []
                in_flight.batches.append(batch)  # until acknowledged, in _finish
                work = await _start(stages, batch, on_fatal) if batch else None
                if previous is not None:
                    await previous  # raises what the batch before raised
                finishing = _finish(stream, stages, work, batch, again, in_flight, on_fatal, gate)
                previous, work = asyncio.ensure_future(finishing), None
        if previous is not None:
            await previous
    finally:
        if previous is not None and not previous.done():
            previous.cancel()  # a rebalance or a stop: delivered again to the next owner
        elif previous is not None and not previous.cancelled():
            previous.exception()  # reported by on_fatal already, not again by asyncio
        if work is not None:
            stages.abandon(work)


async def _start(
    stages: Stages,
    batch: Sequence[EventT[Any]],
    on_fatal: Callable[[BaseException, Sequence[EventT[Any]]], None],
) -> Any:
    try:
        return await stages.start(batch)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        on_fatal(exc, batch)
        raise


async def _finish(
    stream: Any,
    stages: Stages,
    work: Any,
    batch: Sequence[EventT[Any]],
    again: Sequence[EventT[Any]],
    in_flight: InFlight,
    on_fatal: Callable[[BaseException, Sequence[EventT[Any]]], None],
    gate: BatchGate,
) -> None:
    """Compute and deliver one started batch, then acknowledge it (and ``again``: repeats
    that were not processed)."""
    try:
        try:
            if work is not None:
                computed = await stages.compute(work)
                async for deliver, events in stages.deliveries(work, computed):
                    # sends to acknowledgements: an offset commit never sees half of it
                    async with gate.held():
                        await deliver()
                        for event in events:
                            await stream.ack(event)
            async with gate.held():
                for event in again:
                    await stream.ack(event)
        except asyncio.CancelledError:
            if work is not None:
                stages.abandon(work)
            raise  # a rebalance: the batch is delivered again to whoever owns it next
        except BaseException as exc:
            on_fatal(exc, batch)
            raise
        in_flight.last_done = time.time()
    finally:
        in_flight.batches.remove(batch)


class DarkroomWorker(faust.Worker):
    """faust.Worker whose stop has a deadline (see the module docstring)."""

    def __init__(self, *args: Any, shutdown_timeout_s: float, in_flight: InFlight, **kw: Any):
        super().__init__(*args, **kw)
        self.shutdown_timeout_s = shutdown_timeout_s
        self.in_flight = in_flight
        self._deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal_: signal.Signals) -> None:
        if self._deadline is None:
            self._deadline = threading.Timer(self.shutdown_timeout_s, self._abandon)
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signal_)

    def _abandon(self) -> None:
        # A thread: the event loop may be the thing that is stuck (a blocking read, say).
        sys.stderr.write(
            f"darkroom worker: stop did not finish within {self.shutdown_timeout_s:g} s "
            f"(DARKROOM_WORKER_SHUTDOWN_TIMEOUT_S); abandoning {self.in_flight}, which was not "
            "acknowledged and will be processed again\n"
        )
        sys.stderr.flush()
        os._exit(ABANDONED_EXIT_STATUS)


def stop_self() -> None:
    """Ask this process's worker to stop, through the same path as SIGTERM (with deadline)."""
    os.kill(os.getpid(), signal.SIGTERM)


def exit_now() -> None:
    """Leave at once, committing nothing. Under exactly_once a clean stop would commit the open
    transactions, which hold the unfinished batch's outputs; without a commit the broker aborts
    them when the restarted worker's producers start (or after transaction.timeout.ms)."""
    sys.stderr.flush()
    os._exit(ABANDONED_EXIT_STATUS)
