"""The worker's RocksDB-backed Faust tables (each with a changelog topic for recovery)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust


@dataclass(frozen=True)
class Tables:
    """photo_state, user_stats, the near-duplicate index (embeddings, DCT blocks), the tag index,
    people (each user's persons) and each person's photos.

    Every table is written while processing an upload, under that upload's partition, and the
    uploads topic is keyed by user id: so one user's photos, stats and index all live on the
    worker that owns the user's partition (co-partitioned with photos.uploaded).
    """

    photo_state: Any  # photo_id -> state.PhotoState
    user_stats: Any  # user_id -> state.UserStats
    dup_index: Any  # user_id -> dedup.Index
    embeddings: Any  # photo_id -> dedup.pack_embedding(...)
    dct_blocks: Any  # photo_id -> dedup.pack_block(...)
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
            embeddings=table("embeddings", "photo id -> float16 embedding (duplicate check)"),
            dct_blocks=table("dct_blocks", "photo id -> 8x8 DCT block (duplicate check)"),
            tag_photos=table("tag_photos", "user id/tag -> the user's newest photo ids with it"),
            people=table("people", "user id -> persons: centroid, face count, cover face"),
            person_photos=table("person_photos", "user id/person id -> the newest photo ids"),
        )
