"""The worker's RocksDB-backed Faust tables (each with a changelog topic for recovery)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust

from streams.pipeline.keys import split_key, user_prefix


@dataclass(frozen=True)
class Tables:
    """photo_state, user_stats, the near-duplicate index (embeddings, DCT blocks) and groups, the
    tag index, people (each user's persons) and each person's photos.

    Every table is written while processing an upload, under that upload's partition, and the
    uploads topic is keyed by user id: so one user's photos, stats and index all live on the
    worker that owns the user's partition (co-partitioned with photos.uploaded).
    """

    photo_state: Any  # photo_id -> state.PhotoState
    user_stats: Any  # user_id -> state.UserStats
    dup_index: Any  # user_id -> dedup.Index
    embeddings: Any  # keys.photo_key(user_id, photo_id) -> dedup.pack_embedding(...)
    dct_blocks: Any  # photo_id -> dedup.pack_block(...)
    dup_groups: Any  # keys.photo_key(user_id, first photo id) -> bestshot.Group
    tag_photos: Any  # state.tag_key(user_id, tag) -> the newest photo ids with the tag
    people: Any  # user_id -> people.State (persons, candidates, aliases)
    person_photos: Any  # state.person_key(user_id, person_id) -> the newest photo ids

    @classmethod
    def create(cls, app: faust.App, partitions: int) -> Tables:
        """Declare the tables on ``app``."""

        def table(name: str, help_: str) -> Any:
            # keys and values go through Faust's table serializers (JSON by default)
            return app.Table(name, default=None, partitions=partitions, help=help_)

        return cls(
            photo_state=table("photo_state", "photo id -> status, event id, model versions"),
            user_stats=table("user_stats", "user id -> photo count, labels, faces, flagged"),
            dup_index=table("dup_index", "user id -> recent [photo id, perceptual hash]"),
            embeddings=table(
                "embeddings", "user id/photo id -> float16 embedding (duplicates, similar)"
            ),
            dct_blocks=table("dct_blocks", "photo id -> 8x8 DCT block (duplicate check)"),
            dup_groups=table("dup_groups", "user id/first photo id -> a group's copies, ranked"),
            tag_photos=table("tag_photos", "user id/tag -> the user's newest photo ids with it"),
            people=table("people", "user id -> persons: centroid, face count, cover face"),
            person_photos=table("person_photos", "user id/person id -> the newest photo ids"),
        )


def user_rows(table: Any, user_id: str) -> Iterator[tuple[str, Any]]:
    """(photo id, value) of every key ``keys.photo_key(user_id, ...)`` of ``table``, read as a
    range of its RocksDB partitions from the user's prefix on (a user lives in one partition;
    the stores of partitions not assigned here are closed). A plain mapping (tests) is filtered.
    """
    prefix = user_prefix(user_id)
    store = getattr(table, "data", None)
    databases = getattr(store, "_dbs", None)  # faust.stores.rocksdb.Store: one DB a partition
    if store is None or databases is None:
        yield from ((split_key(k)[1], v) for k, v in table.items() if k.startswith(prefix))
        return
    start = store._encode_key(prefix)[:-1]  # the JSON string's opening quote, no closing one
    for database in list(databases.values()):
        for raw_key, raw_value in database.items(from_key=start):
            if not raw_key.startswith(start):
                break
            key = store._decode_key(raw_key)
            yield split_key(key)[1], store._decode_value(raw_value)
