"""What a delivered batch leaves in the worker's tables: each photo's state and its user's
stats, the near-duplicate index, embeddings and blocks, the groups, people, the tag and person
lists; requests to forget applied; now and then, old forgotten markers swept.

Every write is made under the event of the upload it comes from (``as_current``): Faust takes
a write's changelog partition from the current event, and, exactly once, the transaction that
commits that upload's offset. The lists (the index, a tag's photos, a person's photos) are one
key per photo, groups one per copy and people one per person (streams/worker/layouts.py), and
only the rows that changed are written: a batch writes bytes in proportion to its photos, not to
its users' libraries (``make bench-capacity`` measures it).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from faust import streams as faust_streams
from faust.types import EventT

from streams.contracts.events import iso_utc
from streams.imaging.thumbnails import THUMBNAILER
from streams.logs import get_logger
from streams.pipeline import Batch, Photo
from streams.pipeline.keys import entry_key, entry_prefix, photo_key, split_key
from streams.pipeline.outputs import FORGOTTEN
from streams.pipeline.people import Change
from streams.pipeline.similar import SimilarPhotos
from streams.worker import state
from streams.worker.forgetting import Forgetting
from streams.worker.metrics import WorkerMetrics
from streams.worker.readers import VersionsOf
from streams.worker.tables import Tables, partition_rows, put, rows

log = get_logger("darkroom.worker")
SWEEP_EVERY_S = 600.0  # how often a partition's expired forgotten markers are deleted


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event: table writes take their changelog partition from
    it, and inside a batch Faust leaves none set (it raises AssertionError otherwise)."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def events_by_photo(batch: Batch, events: Sequence[EventT[Any]]) -> dict[int, EventT[Any]]:
    """id(photo) -> the event it came from (the pipeline keeps the batch's order)."""
    return {id(photo): event for photo, event in zip(batch.photos, events, strict=True)}


class Recorder:
    """Writes a batch's tables (module docstring)."""

    def __init__(
        self,
        tables: Tables,
        metrics: WorkerMetrics,
        versions: VersionsOf,
        similar: SimilarPhotos | None,
        forgetting: Forgetting,
    ) -> None:
        self.tables, self.metrics, self.versions = tables, metrics, versions
        self.similar, self.forgetting = similar, forgetting
        self._swept: dict[int, float] = {}  # partition -> when its old markers were deleted

    def record(self, batch: Batch, events: Sequence[EventT[Any]]) -> None:
        """Tables and metrics, each write under its own event (its changelog partition)."""
        now = time.time()
        t = self.tables
        event_of = events_by_photo(batch, events)
        by_user: dict[str, EventT[Any]] = {}
        by_photo: dict[str, EventT[Any]] = {}
        uploaded: dict[str, str] = {}  # photo_key -> its upload time (the lists' order)
        for photo in batch.photos:
            if photo.skipped:
                self.metrics.photos.labels("skipped").inc()
                continue
            event = event_of[id(photo)]
            if photo.request is not None:
                with as_current(event):
                    self.forgetting.apply(photo.request)
                self.metrics.photos.labels("forgotten").inc()
                continue
            with as_current(event):
                outcome = self._record_one(photo)
            self.metrics.photos.labels(outcome).inc()
            if photo.upload is not None:
                user_id, photo_id = photo.upload["user_id"], photo.upload["photo_id"]
                key = photo_key(user_id, photo_id)
                by_user[user_id] = by_photo[key] = event
                uploaded[key] = iso_utc(photo.upload["uploaded_at"])
                self.metrics.end_to_end_seconds.observe(
                    max(0.0, now - photo.upload["uploaded_at"].timestamp())
                )
        for key, entry in batch.findings.index_changes.items():
            with as_current(by_photo.get(key) or by_user[split_key(key)[0]]):
                put(t.dup_index, key, entry)  # None: trimmed, the oldest past the bound
        for key, packed in batch.findings.embeddings.items():
            user, photo_id = split_key(key)
            with as_current(by_photo[key]):
                t.embeddings[key] = packed
            if self.similar is not None:
                self.similar.added(user, photo_id, packed)
        for key, packed in batch.findings.blocks.items():
            with as_current(by_photo[key]):
                t.dct_blocks[key] = packed
        for key, row in batch.shots.rows.items():
            with as_current(by_user[split_key(key)[0]]):
                put(t.dup_groups, key, row)
        for key, row in batch.people.rows.items():
            with as_current(by_user[split_key(key)[0]]):
                put(t.people, key, row)
        for change in batch.people.changes:
            with as_current(by_user[change[1]]):
                self._person_photos(change, uploaded)
        self._sweep(events)

    def _sweep(self, events: Sequence[EventT[Any]]) -> None:
        """Now and then, a partition's forgotten markers past their time, deleted under an event
        of the partition (their tombstones go to it)."""
        now = time.time()
        for event in events:
            partition = event.message.partition
            if now - self._swept.get(partition, 0.0) < SWEEP_EVERY_S:
                continue
            self._swept[partition] = now
            with as_current(event):
                markers = partition_rows(self.tables.forgotten, partition)
                swept = self.forgetting.sweep(markers, datetime.now(UTC))
            if swept:
                log.info("forgotten markers expired", partition=partition, deleted=swept)

    def _person_photos(self, change: Change, uploaded: dict[str, str]) -> None:
        """One change of the per-person photo lists (streams.pipeline.people.Change): a photo
        added; a person merged into another (its photos move: as many writes as it has photos,
        once, when two persons turn out to be one); a person dropped (too many for the user)."""
        photos = self.tables.person_photos
        kind, user, person = change[:3]
        if kind == "add":
            photos[entry_key(user, person, change[3])] = uploaded[photo_key(user, change[3])]
            return
        prefix = entry_prefix(user, person)
        for key, when in list(rows(photos, prefix)):
            if kind == "merge":
                photos[entry_key(user, change[3], key[len(prefix) :])] = when
            del photos[key]

    def _record_one(self, photo: Photo) -> str:
        failed = photo.failed
        if failed is not None:
            self.metrics.dead_letters.labels(failed.reason).inc()
            if photo.upload is None:
                return "failed"  # nothing to key state by
            if failed.reason in FORGOTTEN:
                return "refused"  # an upload of what was forgotten: nothing of it is kept
            new = state.failed_state(
                photo.upload["event_id"],
                failed.reason,
                failed.stage,
                failed.detail,
                user_id=photo.upload["user_id"],
                attempt=photo.attempt,
            )
        else:
            assert photo.upload is not None and photo.record is not None
            summary = state.summarise(photo.record, photo.fetched_bytes or 0)
            if photo.people is not None:  # what a re-drive keeps (streams.pipeline.people)
                summary["people"] = photo.people.to_json()
            versions = self.versions(photo.upload["user_id"])
            assets = photo.record.get("assets")
            if assets is not None and assets["error"] is not None:
                # thumbnails missing: the photo is not done with this thumbnailer, so replaying
                # its upload makes them (its other fields come out the same)
                versions = {n: v for n, v in versions.items() if n != THUMBNAILER["name"]}
            new = state.enriched_state(
                photo.upload["event_id"],
                versions,
                summary,
                user_id=photo.upload["user_id"],
                attempt=photo.attempt,
            )
        user, photo_id = photo.upload["user_id"], photo.upload["photo_id"]
        key = photo_key(user, photo_id)
        old = self.tables.photo_state.get(key)
        self.tables.photo_state[key] = new
        self.tables.user_stats[user] = state.update_stats(
            self.tables.user_stats.get(user), old, new
        )
        lost, gained = state.tag_changes(old, new)
        for tag in lost:
            put(self.tables.tag_photos, entry_key(user, tag, photo_id), None)
        for tag in gained:
            self.tables.tag_photos[entry_key(user, tag, photo_id)] = iso_utc(
                photo.upload["uploaded_at"]
            )
        return str(new["status"])
