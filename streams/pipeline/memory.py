"""The tables the duplicate search and the best-shot ranking read, kept in memory: for tests
and benchmarks of the pipeline without a worker (the worker's are streams/worker/processor.py's
``TableDuplicates``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.engine.results import Enriched
from streams.pipeline.bestshot import Group, Shot, ShotFindings, from_rows, groups_of
from streams.pipeline.dedup import Findings, Index
from streams.pipeline.keys import entry_prefix, photo_key, split_entry, split_key, user_prefix


@dataclass
class MemoryStore:
    """What a worker's tables would hold after the batches ``record`` was given."""

    indexes: dict[str, Index] = field(default_factory=dict)
    embeddings: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)
    groups_of: dict[str, str] = field(default_factory=dict)  # photo -> its group's first photo
    shots: dict[str, Shot] = field(default_factory=dict)
    group_rows: dict[str, object] = field(default_factory=dict)  # as a worker's dup_groups

    @property
    def groups(self) -> dict[str, Group]:
        """Every group, by ``keys.photo_key(user, group id)``, assembled from its rows."""
        found: dict[str, Group] = {}
        for user in {split_entry(key)[0] for key in self.group_rows}:
            prefix = user_prefix(user)
            mine = ((key, row) for key, row in self.group_rows.items() if key.startswith(prefix))
            found.update({photo_key(user, g): group for g, group in groups_of(mine).items()})
        return found

    def index_of(self, user_id: str) -> Index | None:
        return self.indexes.get(user_id)

    def embedding_of(self, key: str) -> str | None:
        return self.embeddings.get(key)

    def block_of(self, key: str) -> str | None:
        return self.blocks.get(key)

    def group_of(self, user_id: str, photo_id: str) -> str:
        return self.groups_of.get(photo_id, photo_id)

    def shot_of(self, user_id: str, photo_id: str) -> Shot | None:
        return self.shots.get(photo_id)

    def group(self, key: str) -> Group | None:
        user, group_id = split_key(key)
        prefix = entry_prefix(user, group_id)
        return from_rows(
            group_id,
            ((k[len(prefix) :], row) for k, row in self.group_rows.items() if k.startswith(prefix)),
        )

    def record(
        self, photos: Sequence[tuple[str, Enriched]], found: Findings, ranked: ShotFindings
    ) -> None:
        """Keep what a batch of ``photos`` (photo id, Enriched) found, as the worker does."""
        self.indexes.update(found.indexes)
        self.embeddings.update(found.embeddings)
        self.blocks.update(found.blocks)
        self.groups_of.update(found.groups)
        for photo_id, result in photos:
            shot = Shot.of(result.fields)
            if shot is not None:
                self.shots[photo_id] = shot
        for key, row in ranked.rows.items():
            if row is None:
                self.group_rows.pop(key, None)
            else:
                self.group_rows[key] = row
