"""The worker's order of effects, without a broker: outputs acknowledged, then tables; and a
batch that fails anywhere is never acknowledged (so its offsets are never committed)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.blobs import BlobStore
from streams.blobs.assets import AssetStore
from streams.contracts.headers import FORCE
from streams.engine import Enricher
from streams.errors import FailureReason
from streams.pipeline import DuplicatePolicy, DuplicateSearch
from streams.pipeline.bestshot import BestShots
from streams.worker.agent import Delivery, InFlight, consume, whole
from streams.worker.continuity import Continuity
from streams.worker.metrics import WorkerMetrics
from streams.worker.processor import BatchProcessor, raw_message
from streams.worker.readers import AlreadyDone, TableDuplicates
from streams.worker.tables import Tables
from streams.worker.transport import BatchGate
from tests.pipeline.test_batch import CODEC, make_pipeline, upload_bytes
from tests.pipeline.test_poison import Raising


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Event:
    message: Message


class Consumer:
    """Darkroom's consumer as the agent uses it; these tests deliver in order, so unused."""

    async def accept_gap(self, tp: TP, first: int, last: int) -> None:
        raise AssertionError("no gap expected")

    async def seek(self, tp: TP, offset: int) -> None:
        raise AssertionError("no seek expected")

    def forget(self, events: list[Any]) -> None:
        assert not events


def in_order(start: dict[int, int] | None = None) -> dict[str, Any]:
    """consume()'s continuity and consumer, partitions read from ``start`` (default 0)."""

    async def first_record(tp: TP, offset: int) -> int | None:
        raise AssertionError("no jump expected")

    continuity = Continuity(first_record)
    continuity.reset({TP("photos.uploaded", p): (start or {}).get(p, 0) for p in range(4)})
    return {"continuity": continuity, "consumer": Consumer()}


class Topic:
    """A topic whose acknowledgements the test releases (or fails) by hand."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.acks: list[asyncio.Future[None]] = []

    async def send(self, *, key: bytes | None, value: bytes, force: bool) -> Any:
        self.sent.append(value)
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


async def flushed() -> None:
    """Nothing is buffered here: the fake topics take every record at once."""


def tables() -> Tables:
    names = [field.name for field in dataclasses.fields(Tables)]
    return Tables(**{name: {} for name in names})


def processor(
    enricher: Enricher, root: Path, groups: bool = False
) -> tuple[BatchProcessor, Topic, Tables]:
    """``groups``: with the duplicate search and the best-shot ranking over the tables."""
    enriched, state = Topic(), tables()
    kept: dict[str, Any] = {}
    if groups:
        store = TableDuplicates(state)
        kept = {
            "duplicates": DuplicateSearch(store, DuplicatePolicy(20, 0.75, 100)),
            "best_shots": BestShots(store),
        }
    skip = AlreadyDone(state, enricher.model_versions_for)
    pipeline = make_pipeline(enricher, root, skip=skip, attempts=skip.attempt, **kept)
    return (
        BatchProcessor(
            pipeline=pipeline,
            tables=state,
            metrics=WorkerMetrics(),
            versions=enricher.model_versions_for,
            topics={"enriched": enriched, "failed": Topic(), "shadow": Topic()},
            flush=flushed,
        ),
        enriched,
        state,
    )


def events(*values: bytes) -> list[Any]:
    return [Event(Message("photos.uploaded", 0, i, b"u1", v)) for i, v in enumerate(values)]


async def until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.01)


def test_tables_change_only_after_every_output_is_acknowledged(
    enricher: Enricher, tmp_path: Path
) -> None:
    proc, enriched, state = processor(enricher, tmp_path)

    async def scenario() -> None:
        task = asyncio.create_task(
            proc.process(events(upload_bytes(), upload_bytes("coffee", photo_id="p2")))
        )
        await asyncio.wait_for(until(lambda: len(enriched.acks) == 2), 60)
        enriched.acks[0].set_result(None)
        await asyncio.sleep(0)  # let the processor run as far as it can
        assert state.photo_state == {}, "a table changed before every output was acknowledged"
        enriched.acks[1].set_result(None)
        await asyncio.wait_for(task, 10)
        assert set(state.photo_state) == {"u1/p1", "u1/p2"}
        assert state.user_stats["u1"]["photos"] == 2

    asyncio.run(scenario())
    proc.close()


def test_a_group_is_kept_in_the_tables_and_dropped_when_its_copy_changes(
    enricher: Enricher, tmp_path: Path
) -> None:
    proc, enriched, state = processor(enricher, tmp_path, groups=True)
    first = proc.process(events(upload_bytes(photo_id="p1"), upload_bytes(photo_id="p2")))
    asyncio.run(run_one(first, enriched))
    assert set(state.dup_groups) == {"u1/p1/p1", "u1/p1/p2"}  # one row a copy
    assert state.photo_state["u1/p2"]["summary"]["group"] == "p1"
    assert state.photo_state["u1/p1"]["summary"]["shot"]["megapixels"] > 0
    # p2 uploaded again with other bytes, forced (a re-drive): it copies nothing any more
    again = upload_bytes("coffee", photo_id="p2")
    forced = Event(Message("photos.uploaded", 0, 9, b"u1", again, [(FORCE, b"1")]))
    asyncio.run(run_one(proc.process([forced]), enriched))  # type: ignore[list-item]
    assert state.dup_groups == {} and state.photo_state["u1/p2"]["summary"]["group"] == "p2"
    proc.close()


async def run_one(work: Awaitable[None], topic: Topic) -> None:
    """``work`` to its end, every output acknowledged as soon as it is sent."""
    task = asyncio.ensure_future(work)
    while not task.done():
        for ack in topic.acks:
            if not ack.done():
                ack.set_result(None)
        await asyncio.sleep(0.01)
    await task


def test_a_photo_whose_thumbnails_were_not_stored_is_made_again_when_delivered_again(
    enricher: Enricher, tmp_path: Path
) -> None:
    proc, enriched, state = processor(enricher, tmp_path)
    blobs = BlobStore(tmp_path, 50_000_000)
    proc.pipeline.assets = AssetStore(blobs, ".assets", attempts=1, sleep=lambda _s: None)
    blocked = tmp_path / ".assets"
    blocked.write_bytes(b"a file where the assets folder goes: every write fails")
    asyncio.run(run_one(proc.process(events(upload_bytes())), enriched))
    first = CODEC.decode(enriched.sent[-1]).record
    assert first["assets"]["items"] == [] and first["assets"]["error"]
    blocked.unlink()  # the store works again; the same upload comes again (a replay)
    asyncio.run(run_one(proc.process(events(upload_bytes())), enriched))
    assert len(enriched.sent) == 2, "the photo was taken as done without its thumbnails"
    again = CODEC.decode(enriched.sent[-1]).record
    assert again["assets"]["error"] is None and len(again["assets"]["items"]) == 3
    assert "darkroom-thumbnails" in state.photo_state["u1/p1"]["model_versions"]
    proc.close()


def test_a_refused_output_leaves_the_tables_alone(enricher: Enricher, tmp_path: Path) -> None:
    proc, enriched, state = processor(enricher, tmp_path)

    async def scenario() -> None:
        task = asyncio.create_task(proc.process(events(upload_bytes())))
        await asyncio.wait_for(until(lambda: enriched.acks), 60)
        enriched.acks[0].set_exception(RuntimeError("MessageSizeTooLarge"))
        with pytest.raises(RuntimeError, match="MessageSizeTooLarge"):
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    proc.close()
    assert state.photo_state == {} and state.user_stats == {}


class OneStep:
    """The agent's stages, doing all of a batch's work in ``process`` (at delivery)."""

    def __init__(self, process: Callable[[Sequence[Any]], Awaitable[None]]) -> None:
        self.process = process
        self.abandoned: list[Sequence[Any]] = []

    async def start(self, events: Sequence[Any]) -> Sequence[Any]:
        return events

    async def compute(self, work: Sequence[Any]) -> None:
        return None

    async def deliver(self, work: Sequence[Any], computed: None) -> None:
        await self.process(work)

    def deliveries(self, work: Any, computed: None) -> AsyncIterator[Delivery]:
        return whole(partial(self.deliver, work, computed), work)

    def abandon(self, work: Sequence[Any]) -> None:
        self.abandoned.append(work)


class Stream:
    """The two calls the agent loop makes on a Faust stream."""

    def __init__(self, batches: Sequence[list[Any]]) -> None:
        self.batches, self.acked = list(batches), list[int]()

    async def noack_take(self, max_: int, within: float) -> Any:
        for batch in self.batches:
            yield batch

    async def ack(self, event: Any) -> bool:
        self.acked.append(event.message.offset)
        return True


def test_a_batch_that_raises_is_never_acknowledged() -> None:
    first, second = events(b"a", b"b"), [Event(Message("photos.uploaded", 0, 2, b"u", b"c"))]
    stream = Stream([first, second])
    fatal: list[Any] = []

    async def process(batch: Sequence[Any]) -> None:
        if list(batch) == second:
            raise ValueError("output refused")

    async def scenario() -> None:
        with pytest.raises(ValueError):
            await consume(
                stream,
                OneStep(process),
                batch_size=16,
                within_s=0.1,
                in_flight=InFlight(),
                on_fatal=lambda exc, batch: fatal.append((exc, batch)),
                gate=BatchGate(),
                **in_order(),
            )

    asyncio.run(scenario())
    assert stream.acked == [0, 1]  # the first batch, and nothing of the failed one
    assert len(fatal) == 1 and fatal[0][1] == second


def test_a_cancelled_batch_is_not_acknowledged_nor_fatal() -> None:
    stream = Stream([events(b"a")])
    fatal: list[Any] = []

    async def process(batch: Sequence[Any]) -> None:
        raise asyncio.CancelledError  # what a rebalance does to the agent

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):
            await consume(
                stream,
                OneStep(process),
                batch_size=16,
                within_s=0.1,
                in_flight=InFlight(),
                on_fatal=lambda exc, batch: fatal.append(exc),
                gate=BatchGate(),
                **in_order(),
            )

    asyncio.run(scenario())
    assert stream.acked == [] and fatal == []


def test_a_message_delivered_twice_in_one_batch_is_processed_once() -> None:
    first = events(b"a", b"b")
    again = Event(Message("photos.uploaded", 0, 1, b"u1", b"b"))  # offset 1 once more
    other = Event(Message("photos.uploaded", 1, 1, b"u2", b"c"))  # same offset, other partition
    stream = Stream([[*first, again, other]])
    seen: list[list[Any]] = []

    async def process(batch: Sequence[Any]) -> None:
        seen.append(list(batch))

    async def scenario() -> None:
        await consume(
            stream,
            OneStep(process),
            batch_size=16,
            within_s=0.1,
            in_flight=InFlight(),
            on_fatal=lambda exc, batch: None,
            gate=BatchGate(),
            **in_order(start={1: 1}),
        )

    asyncio.run(scenario())
    assert seen == [[*first, other]]
    assert stream.acked == [0, 1, 1, 1]  # every delivery acknowledged, the repeat included


def test_the_force_header_survives_the_way_into_the_skip_rule(
    enricher: Enricher, tmp_path: Path
) -> None:
    state = tables()
    rule = AlreadyDone(state, enricher.model_versions_for)
    done = {"status": "enriched", "event_id": "e", "model_versions": enricher.model_versions}
    state.photo_state["u1/p1"] = done
    pipeline = make_pipeline(enricher, tmp_path, skip=rule)
    plain = Message("photos.uploaded", 0, 0, b"u1", upload_bytes())
    forced = Message("photos.uploaded", 0, 1, b"u1", upload_bytes(), [(FORCE, b"1")])
    batch = pipeline.run([raw_message(Event(plain)), raw_message(Event(forced))])  # type: ignore[arg-type]
    assert [p.skipped for p in batch.photos] == [True, False]
    assert batch.photos[1].message.header(FORCE) == b"1"
    assert batch.photos[1].message.offset == 1 and batch.photos[1].message.key == b"u1"


def test_a_consumed_message_becomes_the_pipelines_message() -> None:
    # Faust hands headers as a list of pairs or as a dict, values as bytes or text; a tombstone
    # has no value at all
    listed = Message("t", 3, 7, b"k", b"v", [("a", b"1"), ("b", "2")])  # type: ignore[list-item]
    assert raw_message(Event(listed)).headers == (("a", b"1"), ("b", b"2"))  # type: ignore[arg-type]
    mapped = Message("t", 3, 7, b"k", b"v", {"a": b"1"})  # type: ignore[arg-type]
    assert raw_message(Event(mapped)).headers == (("a", b"1"),)  # type: ignore[arg-type]
    tombstone = Message("t", 3, 8, None, None)  # type: ignore[arg-type]
    raw = raw_message(Event(tombstone))  # type: ignore[arg-type]
    assert (raw.topic, raw.partition, raw.offset, raw.key, raw.value) == ("t", 3, 8, None, b"")


class RefusesEnriched(dict[str, Any]):
    """A photo_state table that raises (a bug in recording) when photo "poison" is enriched."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "u1/poison" and value["status"] == "enriched":
            raise KeyError("summary")
        super().__setitem__(key, value)


def test_a_photo_whose_recording_raises_becomes_a_dead_letter_and_the_others_go_on(
    enricher: Enricher, tmp_path: Path
) -> None:
    proc, enriched, state = processor(enricher, tmp_path)
    state = proc.recorder.tables = dataclasses.replace(state, photo_state=RefusesEnriched())
    failed: Topic = proc.topics["failed"]
    batch = events(upload_bytes(photo_id="p1"), upload_bytes(photo_id="poison"))

    async def acknowledged() -> None:
        task = asyncio.ensure_future(proc.process(batch))
        while not task.done():
            for ack in [*enriched.acks, *failed.acks]:
                if not ack.done():
                    ack.set_result(None)
            await asyncio.sleep(0.01)
        await task

    asyncio.run(acknowledged())
    proc.close()
    assert state.photo_state["u1/p1"]["status"] == "enriched"
    assert state.photo_state["u1/poison"]["status"] == "failed"
    assert state.photo_state["u1/poison"]["reason"] == FailureReason.INTERNAL_ERROR
    (dead,) = [CODEC.decode(value).record for value in failed.sent]
    assert (dead["stage"], dead["detail"]) == ("record", "KeyError: 'summary'")
    assert proc.metrics.poisoned_batches._value.get() == 1


class AckingTopic(Topic):
    """A topic that acknowledges every record at once."""

    async def send(self, *, key: bytes | None, value: bytes, force: bool) -> Any:
        ack = await super().send(key=key, value=value, force=force)
        ack.set_result(None)
        return ack


def test_a_poisoned_batch_goes_photo_by_photo_each_computed_outside_the_gate(
    enricher: Enricher, tmp_path: Path
) -> None:
    state = tables()
    pipeline = make_pipeline(
        enricher, tmp_path, duplicates=Raising(ValueError("size 512 is not 1280"))
    )
    enriched, failed = AckingTopic(), AckingTopic()
    proc = BatchProcessor(
        pipeline=pipeline,
        tables=state,
        metrics=WorkerMetrics(),
        versions=enricher.model_versions_for,
        topics={"enriched": enriched, "failed": failed, "shadow": AckingTopic()},
        flush=flushed,
    )
    gate = BatchGate(limit_s=30)
    held_while_computing: list[bool] = []
    alone = proc._alone

    async def spied(message: Any) -> Any:
        held_while_computing.append(gate._lock.locked())
        return await alone(message)

    proc._alone = spied  # type: ignore[method-assign]
    batch = events(*(upload_bytes(photo_id=p) for p in ("p1", "poison", "p2")))
    stream = Stream([batch])

    async def scenario() -> None:
        await consume(
            stream,
            proc,
            batch_size=16,
            within_s=0.1,
            in_flight=InFlight(),
            on_fatal=lambda exc, batch: None,
            gate=gate,
            **in_order(),
        )

    asyncio.run(scenario())
    proc.close()
    assert held_while_computing == [False, False, False]  # a commit may come in between
    assert stream.acked == [0, 1, 2]
    assert len(enriched.sent) == 2 and len(failed.sent) == 1
    assert state.photo_state["u1/poison"]["reason"] == FailureReason.INTERNAL_ERROR
