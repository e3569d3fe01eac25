"""The tables the duplicate search and the best-shot ranking read, kept in memory: for tests
and benchmarks of the pipeline without a worker (the worker's are streams/worker/processor.py's
``TableDuplicates``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.engine.results import Enriched
from streams.pipeline.bestshot import Group, Shot, ShotFindings
from streams.pipeline.dedup import Findings, Index


@dataclass
class MemoryStore:
    """What a worker's tables would hold after the batches ``record`` was given."""

    indexes: dict[str, Index] = field(default_factory=dict)
    embeddings: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)
    groups_of: dict[str, str] = field(default_factory=dict)  # photo -> its group's first photo
    shots: dict[str, Shot] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

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
        return self.groups.get(key)

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
        for key, group in ranked.groups.items():
            if group is None:
                self.groups.pop(key, None)
            else:
                self.groups[key] = group
