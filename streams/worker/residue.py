"""What is left of a user, or of one of their photos, in the worker's tables as their changelog
topics hold them: `darkroom forget --verify`.

Each table's changelog is read to its end and folded to its last value per key (a tombstone
deletes the key), which is what a worker that recovers the table would hold, and what the log
cleaner leaves once it has compacted the topic. A user's keys are those named after them (their
id, or their quoted id then "/"); a photo's, its own key, its entries in the user's lists (a
tag's photos, a person's) and every value of the user's that still names it. The
``forgotten`` table's marker is reported apart: it holds only the ids and the time, is what
refuses a late upload, and goes after ``worker.forget_remember_days``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from streams.config import Settings
from streams.contracts.codec import Codec
from streams.pipeline.keys import photo_key, split_entry, user_prefix
from streams.tail import scan_many
from streams.worker.local_state import changelog_topic
from streams.worker.tables import Tables

TABLES = [f.name for f in fields(Tables)]
MARKERS = "forgotten"


@dataclass(frozen=True)
class Left:
    """One live key that names the user (or the photo)."""

    table: str
    key: str
    why: str  # "key": the key is theirs; "value": the value still names the photo

    @property
    def marker(self) -> bool:
        """The forgotten table's marker (expected until it expires)."""
        return self.table == MARKERS


def folded(settings: Settings, codec: Codec, topics: list[str]) -> dict[str, dict[str, str]]:
    """Each changelog topic's last value per key (JSON text), tombstoned keys left out."""
    found: dict[str, dict[str, str]] = {topic: {} for topic in topics}
    for message in scan_many(settings, codec, topics):
        if message.key is None:
            continue
        key = json.loads(message.key)
        if not message.raw:
            found[message.topic].pop(key, None)
        else:
            found[message.topic][key] = message.raw.decode()
    return found


# keyed keys.entry_key(user, name, photo); a group's name is a photo too (its first)
LISTS = ("tag_photos", "person_photos", "dup_groups")


def theirs(key: str, user: str) -> bool:
    """Whether a table key belongs to ``user``: their id, or their quoted prefix (photo keys,
    list entries)."""
    return key == user or key.startswith(user_prefix(user))


def names_photo(table: str, key: str, user: str, photo: str) -> bool:
    """Whether ``key`` of ``table`` is the photo's own: its key, or its entry in a list."""
    if table in LISTS:
        _, name, listed = split_entry(key)
        return photo in (listed, name) if table == "dup_groups" else listed == photo
    return key == photo_key(user, photo)


def left_of(settings: Settings, codec: Codec, user: str, photo: str | None = None) -> list[Left]:
    """Every live key of ``user`` (``photo`` None), or of their photo ``photo``, in every
    table's changelog."""
    topics = {changelog_topic(settings.worker.app_id, table): table for table in TABLES}
    left: list[Left] = []
    named = json.dumps(photo) if photo is not None else None
    for topic, values in folded(settings, codec, list(topics)).items():
        table = topics[topic]
        for key, value in sorted(values.items()):
            if not theirs(key, user):
                continue
            if photo is None or names_photo(table, key, user, photo):
                left.append(Left(table, key, "key"))
            elif named is not None and named in value and table != MARKERS:
                left.append(Left(table, key, "value"))
    return left
