"""Forgetting without a broker: a deletion or an erasure through the agent's loop, the real
pipeline and engine, and the worker's tables as plain dicts.

The rule checked: after uploads A and the deletion of some of them, the tables equal those of a
clean run of A without them (stats, tags, index, groups re-formed; persons keep their ids); an
erasure leaves no key of the user but its marker; a later upload of what was forgotten is
refused without its bytes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest

from streams.contracts.events import new_photo_deleted, new_upload, new_user_erased
from streams.contracts.schemas import EventType
from streams.engine import Enricher
from streams.errors import FailureReason
from streams.pipeline import DuplicatePolicy, DuplicateSearch
from streams.pipeline.bestshot import BestShots, size
from streams.pipeline.keys import entry_prefix
from streams.pipeline.people import PeoplePolicy, PeopleSearch
from streams.pipeline.people_state import persons
from streams.samples import encode_jpeg, load_photo
from streams.worker import recording
from streams.worker.agent import InFlight, consume, cut
from streams.worker.forgetting import Forgetting
from streams.worker.layouts import group_at, people_at
from streams.worker.metrics import WorkerMetrics
from streams.worker.processor import BatchProcessor
from streams.worker.readers import AlreadyDone, TableDuplicates, TablePeople
from streams.worker.tables import Tables, newest
from streams.worker.transport import BatchGate
from tests.pipeline.test_batch import CODEC, make_pipeline
from tests.worker.test_processor import AckingTopic, Event, Message, Stream, in_order

MIN_FACES = 2
TABLES = [f.name for f in dataclasses.fields(Tables)]
# photo id -> how it is made from a sample: chelsea's copies make a group, the astronaut and
# its mirror one person (2 faces), coffee nothing at all
LIBRARY = {
    "cat": ("chelsea", None),
    "cat_small": ("chelsea", 0.5),
    "cat_turned": ("chelsea", "turn"),
    "astro": ("astronaut", None),
    "astro_mirror": ("astronaut_mirror", None),
    "coffee": ("coffee", None),
}
UPLOADED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def jpeg(sample: str, change: float | str | None) -> bytes:
    image = load_photo(sample)
    if change == "turn":
        image = image.transpose(1, 0, 2)[:, ::-1].copy()  # 90 degrees
    elif isinstance(change, float):
        image = image[:: int(1 / change), :: int(1 / change)].copy()
    return encode_jpeg(image)


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {photo: jpeg(*how) for photo, how in LIBRARY.items()}


def upload(user: str, photo: str, data: bytes, at: datetime = UPLOADED_AT) -> bytes:
    record = new_upload(
        photo_id=photo,
        user_id=user,
        content_type="image/jpeg",
        byte_size=len(data),
        blob=data,
        uploaded_at=at,
    )
    return CODEC.encode(EventType.PHOTO_UPLOADED, record)


def deleted(user: str, photo: str, at: datetime = UPLOADED_AT + timedelta(days=1)) -> bytes:
    record = new_photo_deleted(user_id=user, photo_id=photo, reason="test", requested_at=at)
    return CODEC.encode(EventType.PHOTO_DELETED, record)


def erased(user: str) -> bytes:
    record = new_user_erased(user_id=user, reason="test", requested_at=UPLOADED_AT)
    return CODEC.encode(EventType.USER_ERASED, record)


@dataclasses.dataclass
class Worker:
    """A processor over plain-dict tables, fed through the agent's loop."""

    processor: BatchProcessor
    tables: Tables
    enriched: AckingTopic
    failed: AckingTopic
    offset: int = 0

    def run(self, *batches: Sequence[bytes]) -> None:
        """Each of ``batches`` as one batch the consumer hands over, in order (partition 0)."""
        start, taken = self.offset, []
        for values in batches:
            taken.append([self._event(value) for value in values])
        stream = Stream(taken)

        async def scenario() -> None:
            await consume(
                stream,
                self.processor,
                batch_size=16,
                within_s=0.1,
                in_flight=InFlight(),
                on_fatal=lambda exc, _batch: None,
                gate=BatchGate(),
                is_request=self.processor.is_request,
                **in_order({0: start}),
            )

        asyncio.run(scenario())

    def _event(self, value: bytes) -> Event:
        key = CODEC.decode(value).record["user_id"].encode()
        self.offset += 1
        return Event(Message("photos.uploaded", 0, self.offset - 1, key, value))

    def outputs(self, topic: AckingTopic) -> list[tuple[str, dict[str, Any]]]:
        decoded = [CODEC.decode(value) for value in topic.sent]
        return [(d.event_type.value, d.record) for d in decoded]


def worker(enricher: Enricher, root: Path, remember_s: float = 86400.0) -> Worker:
    tables = Tables(**{name: {} for name in TABLES})
    store = TableDuplicates(tables)
    done = AlreadyDone(tables, enricher.model_versions_for)
    forgetting = Forgetting(tables, remember_s=remember_s)
    pipeline = make_pipeline(
        enricher,
        root,
        skip=done,
        attempts=done.attempt,
        refuse=forgetting,
        duplicates=DuplicateSearch(store, DuplicatePolicy(20, 0.75, 100)),
        best_shots=BestShots(store),
        people=PeopleSearch(TablePeople(tables), PeoplePolicy(min_faces=MIN_FACES)),
    )
    enriched, failed = AckingTopic(), AckingTopic()
    processor = BatchProcessor(
        pipeline=pipeline,
        tables=tables,
        metrics=WorkerMetrics(),
        versions=enricher.model_versions_for,
        topics={"enriched": enriched, "failed": failed, "shadow": AckingTopic()},
        flush=_flushed,
        forgetting=forgetting,
    )
    return Worker(processor, tables, enriched, failed)


async def _flushed() -> None:
    """The dict tables hold every write at once."""


def content(tables: Tables, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    """The tables as a clean run must equal them (times, attempts and event ids left out)."""
    found: dict[str, Any] = {}
    for name in TABLES:
        if name in (*leave_out, "forgotten"):
            continue
        table = dict(getattr(tables, name))
        if name == "photo_state":  # the persons a face joined: compared apart (ids stay)
            table = {
                key: {
                    **{k: v for k, v in value.items() if k not in ("updated_at", "event_id")},
                    "summary": {
                        k: v
                        for k, v in (value.get("summary") or {}).items()
                        if k != "people" or "people" not in leave_out
                    },
                }
                for key, value in table.items()
            }
        found[name] = table
    return found


@pytest.mark.parametrize(
    "gone",
    [
        ["cat", "cat_small", "astro"],  # a group's first and a copy (one left), a person's face
        ["cat"],  # a group's first: re-formed around its oldest copy
        ["cat_turned"],  # a copy
        ["astro_mirror", "coffee"],  # a face, a photo in nothing
    ],
    ids=lambda gone: "+".join(gone),
)
def test_a_deletion_equals_never_having_uploaded_the_photo(
    enricher: Enricher, photos: dict[str, bytes], tmp_path: Path, gone: list[str]
) -> None:
    everything = [upload("u1", p, data) for p, data in photos.items()]
    everything.append(upload("u2", "cat", photos["cat"]))  # another user, same photo id

    run = worker(enricher, tmp_path / "a")
    run.run(everything[:3], everything[3:])
    before = people_at(run.tables, "u1")
    assert before is not None
    (person,) = persons(before, MIN_FACES)
    assert person["faces"] == 2, "the astronaut's two faces: one person"
    group = group_at(run.tables, "u1", "cat")
    assert group is not None and size(group) == 3
    run.run([deleted("u1", p) for p in gone])

    clean = worker(enricher, tmp_path / "b")
    clean.run([upload("u1", p, data) for p, data in photos.items() if p not in gone])
    clean.run([upload("u2", "cat", photos["cat"])])
    ids = ("people", "person_photos")  # keyed by person ids, which a clean run names anew
    assert content(run.tables, ids) == content(clean.tables, ids)
    assert run.tables.user_stats["u1"]["photos"] == len(LIBRARY) - len(gone)
    # a person keeps their id; with one face left they are a candidate again, its cover the
    # face that is left
    left = people_at(run.tables, "u1")
    assert left is not None
    clusters = left["clusters"]
    faces_left = 2 - len({"astro", "astro_mirror"} & set(gone))
    assert {c["count"] for c in clusters.values()} == {faces_left}
    cluster = clusters[person["person_id"]]
    kept = {"astro", "astro_mirror"} - set(gone)
    assert cluster["cover"]["photo_id"] in kept
    assert len(persons(left, MIN_FACES)) == (faces_left >= MIN_FACES)
    person_photos, held = newest(
        run.tables.person_photos, entry_prefix("u1", person["person_id"]), 100
    )
    assert set(person_photos) == kept and held == len(kept)
    removed = [r for t, r in run.outputs(run.enriched) if t == "PhotoRemoved"]
    assert [(r["user_id"], r["photo_id"]) for r in removed] == [("u1", p) for p in gone]
    assert set(run.tables.forgotten) == {f"u1/{p}" for p in gone}


def test_a_person_whose_cover_is_deleted_takes_the_cover_a_clean_run_chooses(
    enricher: Enricher, tmp_path: Path
) -> None:
    """Three faces of one person: the largest blurred, the cover sharp, a smaller one sharp.
    Deleting the cover's photo must leave the smaller sharp face as the cover, not the
    largest one, as if the deleted photo had never come."""
    image = load_photo("astronaut")
    big = cv2.resize(image, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    library = {
        "soft": encode_jpeg(cv2.GaussianBlur(big, (0, 0), 5.0)),
        "sharp": encode_jpeg(image),
        "small": encode_jpeg(cv2.resize(image, None, fx=0.75, fy=0.75)),
    }
    run = worker(enricher, tmp_path / "a")
    run.run([upload("u1", p, data) for p, data in library.items()])
    (person,) = persons(people_at(run.tables, "u1") or {}, MIN_FACES)
    assert person["faces"] == 3 and person["cover"]["photo_id"] == "sharp"
    run.run([deleted("u1", "sharp")])
    clean = worker(enricher, tmp_path / "b")
    clean.run([upload("u1", p, data) for p, data in library.items() if p != "sharp"])
    (left,) = persons(people_at(run.tables, "u1") or {}, MIN_FACES)
    (expected,) = persons(people_at(clean.tables, "u1") or {}, MIN_FACES)
    assert left["cover"]["photo_id"] == "small"
    assert left["cover"] == expected["cover"]


def test_an_erasure_leaves_no_key_of_the_user_but_its_marker(
    enricher: Enricher, photos: dict[str, bytes], tmp_path: Path
) -> None:
    run = worker(enricher, tmp_path)
    run.run([upload("u1", p, data) for p, data in photos.items()], [upload("u2", "x", b"\0")])
    run.run([deleted("u1", "coffee")])  # its marker goes too: the user's covers it
    other = content(run.tables)
    run.run([erased("u1")])
    for name in TABLES:
        keys = [str(k) for k in getattr(run.tables, name)]
        mine = [k for k in keys if k == "u1" or k.startswith("u1/") or k in LIBRARY]
        assert mine == (["u1/"] if name == "forgotten" else []), (name, mine)
    # what the other user had is all that is left
    assert {k: v for k, v in content(run.tables).items()} == {
        name: {k: v for k, v in table.items() if "u2" in str(k) or "u2" in str(v)}
        for name, table in other.items()
    }
    removals = [r for t, r in run.outputs(run.enriched) if t == "PhotoRemoved"]
    assert [(r["user_id"], r["photo_id"]) for r in removals] == [("u1", "coffee"), ("u1", None)]


def test_what_was_forgotten_is_refused_when_it_comes_again_without_its_bytes(
    enricher: Enricher, photos: dict[str, bytes], tmp_path: Path
) -> None:
    run = worker(enricher, tmp_path)
    late = upload("u1", "cat", photos["cat"])  # uploaded before its deletion: a replay
    again = upload("u1", "cat", photos["cat"], at=UPLOADED_AT + timedelta(days=2))  # new upload
    # one batch as the consumer hands it over: the agent cuts it around the request
    unseen = upload("u1", "bird", photos["coffee"])  # deleted before its upload arrived
    run.run([upload("u1", "cat", photos["cat"]), deleted("u1", "cat"), deleted("u1", "bird")])
    run.run([late, unseen])
    run.run([erased("u2"), upload("u2", "dog", photos["coffee"]), again])
    dead = {r["photo_id"]: r for _, r in run.outputs(run.failed)}
    assert dead["cat"]["reason"] == dead["bird"]["reason"] == FailureReason.PHOTO_DELETED
    assert dead["dog"]["reason"] == FailureReason.USER_ERASED
    for letter in dead.values():
        assert letter["original_value"] == b"" and letter["original_truncated"]
        assert letter["original_size"] > 1000  # it held the photo: gone, its size is left
    assert run.tables.photo_state["u1/cat"]["status"] == "enriched"  # the new upload
    assert "u2" not in run.tables.user_stats


def test_a_batch_is_cut_around_each_run_of_requests() -> None:
    kinds = "uurrurru"
    parts = cut(list(kinds), lambda event: event == "r")
    assert ["".join(p) for p in parts] == ["uu", "rr", "u", "rr", "u"]
    assert cut([], lambda event: True) == []


def test_markers_past_their_time_are_deleted_and_what_they_refused_comes_back(
    enricher: Enricher, photos: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "SWEEP_EVERY_S", 0.0)  # sweep at every batch
    run = worker(enricher, tmp_path, remember_s=3600.0)
    run.run([deleted("u1", "cat"), erased("u2")])
    assert set(run.tables.forgotten) == {"u1/cat", "u2/"}
    run.run([upload("u3", "x", photos["coffee"])])  # a batch: the markers are younger than 1 h
    assert set(run.tables.forgotten) == {"u1/cat", "u2/"}
    run.processor.forgetting.remember_s = 0.001
    run.run([upload("u3", "y", photos["coffee"])])  # the next batch deletes them
    assert run.tables.forgotten == {}
    run.run([upload("u1", "cat", photos["cat"]), upload("u2", "z", photos["coffee"])])
    assert {"u1/cat", "u2/z"} <= set(run.tables.photo_state)  # no longer refused
