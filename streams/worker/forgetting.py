"""Forgetting in the worker: a PhotoDeleted or a UserErased applied to every table.

A photo's deletion takes it out of everything that counted it: its keys in photo_state,
embeddings and dct_blocks go (a ``del`` on a Faust table writes the changelog's tombstone), the
user's stats lose exactly what the photo added, it leaves its tag lists, the duplicate index
and its group (a group whose first photo goes is re-formed around its oldest copy; a group left
with one photo goes), its faces leave their persons (count, centroid and cover; a person left
with no face goes, no other id changes), and the user's similar-photo matrix is dropped from
memory. An erasure does that for every photo of the user (photo_state holds them under one
prefix) and deletes the user's remaining keys: stats, index, people, person and tag lists.

What is remembered is only that it happened, in ``forgotten``: the ids, the time and the
request, for ``worker.forget_remember_days``, so that an upload that comes later (a retry, a
replay) is refused instead of bringing the photo or the user back. ``sweep`` deletes the
markers that are older (streams/worker/recording.py runs it on a partition's markers now and
then, under an event of that partition: a tombstone must go to the partition that holds the
key). Everything
here runs on the event loop under the request's event, so its writes go to the request's
partition and commit with its offset (exactly_once: in its transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.contracts.events import iso_utc
from streams.errors import PhotoDeletedError, PhotoError, UserErasedError
from streams.logs import get_logger
from streams.pipeline import Photo, bestshot, covers, people_state
from streams.pipeline import people as people_
from streams.pipeline.bestshot import without_member
from streams.pipeline.faces import Given
from streams.pipeline.keys import entry_key, entry_prefix, photo_key, user_prefix
from streams.pipeline.similar import SimilarPhotos
from streams.worker import state
from streams.worker.layouts import group_at, people_at, write
from streams.worker.tables import Tables, newest, put, rows, user_rows

log = get_logger("darkroom.worker")


@dataclass
class Forgetting:
    """The worker's side of forgetting (module docstring); also the pipeline's refusal rule."""

    tables: Tables
    similar: SimilarPhotos | None = None
    remember_s: float = 30 * 86400.0

    def __call__(self, photo: Photo) -> PhotoError | None:
        """Why ``photo``'s upload is refused: its user was erased before it, or the photo was
        deleted after being uploaded then (a later upload of the same photo is a new one)."""
        upload = photo.upload
        assert upload is not None
        user, photo_id = upload["user_id"], upload["photo_id"]
        erased = self.tables.forgotten.get(user_prefix(user))
        if erased is not None:
            return UserErasedError(
                f"user {user!r} was erased at {erased['at']} (request {erased['request']})"
            )
        deleted = self.tables.forgotten.get(photo_key(user, photo_id))
        if deleted is not None and iso_utc(upload["uploaded_at"]) <= deleted["requested_at"]:
            return PhotoDeletedError(
                f"photo {photo_id!r} was deleted at {deleted['at']} (request "
                f"{deleted['request']}), after this upload"
            )
        return None

    def apply(self, request: dict[str, Any]) -> None:
        """Forget what ``request`` (a decoded PhotoDeleted or UserErased) names."""
        user, photo_id = request["user_id"], request.get("photo_id")
        if photo_id is not None:
            self.forget_photo(user, photo_id)
            self._remember(photo_key(user, photo_id), request)
        else:
            photos = self.erase_user(user)
            self._remember(user_prefix(user), request)
            log.info("user erased", request=request["event_id"], photos=photos)
        if self.similar is not None:
            self.similar.drop(user)

    def forget_photo(self, user: str, photo_id: str) -> None:
        """Take one photo out of every table (module docstring)."""
        key = photo_key(user, photo_id)
        t = self.tables
        old = t.photo_state.get(key)
        if old is not None:
            put(t.user_stats, user, state.without(t.user_stats.get(user), old))
            for tag in state.tags_of(old):
                put(t.tag_photos, entry_key(user, tag, photo_id), None)
            summary = old.get("summary") or {}
            if old["status"] == "enriched":
                self._leave_group(user, photo_id, summary)
                self._leave_people(user, photo_id, summary)
            del t.photo_state[key]
        for table in (t.embeddings, t.dct_blocks, t.dup_index):
            put(table, key, None)

    def erase_user(self, user: str) -> int:
        """Forget every photo of ``user``, then every key of theirs left; returns how many
        photos there were."""
        t = self.tables
        photos = [photo for photo, _ in user_rows(t.photo_state, user)]
        for photo in photos:
            self.forget_photo(user, photo)
        # what no photo's state led to (strays, persons' lists, groups), by the user's prefix
        lists = (t.embeddings, t.dct_blocks, t.dup_index, t.dup_groups, t.tag_photos, t.people)
        for table in (*lists, t.person_photos):
            for key, _ in list(rows(table, user_prefix(user))):
                del table[key]
        for table in (t.user_stats, t.people):  # the people's, as kept before rows (a value)
            put(table, user, None)
        for key, _ in list(rows(t.forgotten, user_prefix(user))):
            if key != user_prefix(user):  # the user's marker covers their photos' markers
                del t.forgotten[key]
        return len(photos)

    def sweep(self, markers: Iterable[tuple[str, dict[str, Any]]], now: datetime) -> int:
        """Delete those of ``markers`` (one partition's, under an event of that partition)
        older than ``remember_s``; returns how many."""
        cutoff = iso_utc(datetime.fromtimestamp(now.timestamp() - self.remember_s, UTC))
        old = [key for key, marker in markers if marker["at"] < cutoff]
        for key in old:
            put(self.tables.forgotten, key, None)
        return len(old)

    def _remember(self, key: str, request: dict[str, Any]) -> None:
        self.tables.forgotten[key] = {
            "at": iso_utc(datetime.now(UTC)),
            "requested_at": iso_utc(request["requested_at"]),
            "request": request["event_id"],
            "reason": request["reason"],
        }

    def _leave_group(self, user: str, photo_id: str, summary: dict[str, Any]) -> None:
        """The photo out of its near-duplicate group; a group whose first photo goes is
        re-formed around its oldest copy, which its copies then point at."""
        t = self.tables
        first = summary.get("group") or summary.get("duplicate_of") or photo_id
        group = group_at(t, user, first)
        if group is None:
            return
        members = [m for m in group["members"] if m[0] != photo_id]
        if first != photo_id:  # a copy leaves; with one photo left there is no group
            write(
                t.dup_groups,
                bestshot.changed_rows(user, first, group, without_member(group, photo_id)),
            )
            for member, *_ in members:  # a copy may have pointed at this one
                member_key = photo_key(user, member)
                before = t.photo_state.get(member_key)
                summary_before = (before or {}).get("summary") or {}
                if summary_before.get("duplicate_of") == photo_id:
                    assert before is not None
                    summary_after = {**summary_before, "duplicate_of": first}
                    t.photo_state[member_key] = {**before, "summary": summary_after}
            return
        write(t.dup_groups, bestshot.changed_rows(user, first, group, None))
        heir, regrouped = bestshot.reformed(group)
        if heir is None:
            return
        write(t.dup_groups, bestshot.changed_rows(user, heir, None, regrouped))
        for copy, *_ in members:
            copy_key = photo_key(user, copy)
            before = t.photo_state.get(copy_key)
            if before is None or before["status"] != "enriched":
                continue
            summary_after = {**before["summary"], "group": heir}  # as a clean run names it
            if copy == heir:
                summary_after["duplicate_of"] = None  # the first now
            elif summary_after.get("duplicate_of") == photo_id:
                summary_after["duplicate_of"] = heir
            after = {**before, "summary": summary_after}
            t.photo_state[copy_key] = after
            put(t.user_stats, user, state.update_stats(t.user_stats.get(user), before, after))

    def _leave_people(self, user: str, photo_id: str, summary: dict[str, Any]) -> None:
        """The photo's faces out of their persons (streams.pipeline.people.without_photo); a
        person whose cover was on this photo takes the best face left among its photos."""
        given = Given.from_json(summary.get("people"))
        found = people_at(self.tables, user)
        if given is None or found is None:
            return
        before = people_state.snapshot(found)
        touched, gone = people_.without_photo(found, photo_id, given)
        photos = self.tables.person_photos
        for person in gone:
            for key, _ in list(rows(photos, entry_prefix(user, person))):
                del photos[key]
        for person in touched:
            put(photos, entry_key(user, person, photo_id), None)
            cluster = found["clusters"][person]
            if (cluster.get("cover") or {}).get("photo_id") == photo_id:
                left, _ = newest(photos, entry_prefix(user, person), state.PHOTOS_LISTED)
                covers.set_cover(cluster, *self._cover(user, person, found, left))
        write(self.tables.people, people_state.changed_rows(user, before, found))

    def _cover(
        self, user: str, person: str, found: dict[str, Any], photos: list[str]
    ) -> tuple[dict[str, Any] | None, float]:
        """The best-scoring face of ``person`` among ``photos`` (its newest kept), as a clean
        run would have chosen it: the earlier photo on a tie (``photos`` are newest first)."""
        best: tuple[dict[str, Any] | None, float] = (None, -2.0)  # as covers.held says of none
        for photo in photos:
            kept = self.tables.photo_state.get(photo_key(user, photo))
            given = Given.from_json(((kept or {}).get("summary") or {}).get("people"))
            if given is None:
                continue
            for index in reversed(range(len(given.clusters))):  # the first face on a tie
                cluster, offered = given.clusters[index], given.cover(photo, index)
                if cluster is None or offered is None:
                    continue
                if people_state.resolve(found, cluster) == person and offered[1] >= best[1]:
                    best = offered
        return best
