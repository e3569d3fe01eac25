"""Near-duplicate search within one user's photos: perceptual hash to find, DCT block to decide.

Each user's index lists their newest photos as [photo_id, hash hex, upload time] (the worker
keeps one table key per photo, so indexing a photo writes one small record, however many photos
the user has; past ``max_photos`` the oldest upload goes, so the index is what a clean run of
the same uploads would hold, whatever was processed when). A new photo is compared through its
8 dihedral hashes (rotations and mirror images, computed from one DCT; against every entry at
once), so a rotated or mirrored copy finds its original; the hash's distance only picks
candidates. What decides is the correlation of the two photos' 8x8 DCT blocks, the
new one turned the way its hash matched (``phash.block_correlation``): pixels compared in the
same orientation. The embedding was the wrong depth for this: MobileNetV2 sees a photo turned
90 degrees as another photo (cosine 0.5-0.7), so turned copies were refused; and it is the
same for the same scene a moment later (a burst), which is not a duplicate.

A photo indexed before the blocks were stored is judged as it was then: its hash within 10
bits, and the embeddings' cosine at least ``min_similarity`` when both photos have one.

Copies form groups named by their first photo (streams/pipeline/bestshot.py ranks them). The
first photos of groups are tried before copies, so a copy points at the group's first photo
whenever it is near enough to it, and not at another copy; a photo's own copies are never
candidates (a replayed original stays the first of its group).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streams.config import WorkerSettings
from streams.engine.results import Enriched
from streams.imaging.phash import (
    DIHEDRAL_NAMES,
    DUPLICATE_THRESHOLD,
    block_correlation,
    dihedral_block,
)
from streams.pipeline.keys import photo_key

Index = list[list[Any]]  # [[photo_id, phash_hex, uploaded_at ISO-8601], ...], oldest first
# what the search takes of each photo: user id, photo id, upload time (ISO-8601), Enriched
Searched = tuple[str, str, str, Enriched]


@dataclass(frozen=True)
class DuplicatePolicy:
    """How close is close enough."""

    max_distance: int  # hash bits that may differ for a candidate
    min_similarity: float  # embedding cosine, for photos indexed without a block
    max_photos: int
    min_correlation: float = 0.75  # the blocks' correlation that makes a candidate a copy

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> DuplicatePolicy:
        """The policy the worker's settings (DARKROOM_WORKER_DUPLICATE_*) configure."""
        return cls(
            worker.duplicate_max_distance,
            worker.duplicate_min_similarity,
            worker.index_max_photos,
            worker.duplicate_min_correlation,
        )


QUANTISED = "q8:"  # what a packed 8-bit embedding starts with (base64 never holds ":")


def pack_embedding(vector: Sequence[float]) -> str:
    """An embedding as 8 bits a value: its largest magnitude maps to 127, and that scale is kept
    (a float32) before the values; base64, behind ``QUANTISED``. 1,284 bytes for 1280 dims
    (float16 took 2,560): recall@20 of similar photos 0.998 against float16
    (``make bench-quantize``)."""
    values = np.asarray(vector, dtype=np.float32)
    top = float(np.abs(values).max()) if values.size else 0.0
    scale = np.float32(top / 127.0 if top > 0 else 1.0)
    quantised = np.round(values / scale).astype(np.int8)
    raw = scale.tobytes() + quantised.tobytes()
    return QUANTISED + base64.b64encode(raw).decode("ascii")


def unpack_embedding(packed: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The inverse of pack_embedding; a float16 embedding stored before it reads as it was."""
    if not packed.startswith(QUANTISED):
        return np.frombuffer(base64.b64decode(packed), dtype=np.float16).astype(np.float32)
    raw = base64.b64decode(packed[len(QUANTISED) :])
    scale = np.frombuffer(raw[:4], dtype=np.float32)
    return np.frombuffer(raw[4:], dtype=np.int8).astype(np.float32) * scale


def pack_block(block: Sequence[float]) -> str:
    """An 8x8 DCT block as base64 float32 (344 characters)."""
    return base64.b64encode(np.asarray(block, dtype=np.float32).tobytes()).decode("ascii")


def unpack_block(packed: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The inverse of pack_block, as the 8x8 array."""
    flat = np.frombuffer(base64.b64decode(packed), dtype=np.float32)
    return flat.astype(np.float64).reshape(8, 8)


class Earlier(Protocol):
    """What the search reads of an earlier photo of the same user."""

    def embedding_of(self, photo_id: str) -> str | None:
        """Its packed embedding, or None."""
        ...

    def block_of(self, photo_id: str) -> str | None:
        """Its packed DCT block, or None (indexed before blocks were kept)."""
        ...

    def group_of(self, photo_id: str) -> str:
        """The first photo of its group; its own id when it is no copy."""
        ...


def find_duplicate(
    me: str,
    index: Index,
    variants: Sequence[int],
    block: Sequence[float] | None,
    embedding: Sequence[float] | None,
    stored: Earlier,
    policy: DuplicatePolicy,
) -> dict[str, Any] | None:
    """The earlier photo that this one nearly duplicates, as a DuplicateOf record: the first
    photo of a group before any copy, then the closest hash. ``me``: this photo's id."""
    candidates = []
    if index:
        # every entry against every orientation at once: a user indexes up to 5,000 photos
        hashes = np.array([int(entry[1], 16) for entry in index], dtype=np.uint64)
        turned = np.array(variants, dtype=np.uint64)[:, None] ^ hashes[None, :]
        distances = np.bitwise_count(turned)  # (orientation, entry)
        turns, nearest = distances.argmin(axis=0), distances.min(axis=0)
        for i in np.flatnonzero(nearest <= policy.max_distance):
            photo_id = index[i][0]
            group = stored.group_of(photo_id)
            if group != me:  # not one of this photo's own copies
                candidates.append((group != photo_id, int(nearest[i]), int(turns[i]), photo_id))
    mine = np.asarray(block, dtype=np.float64).reshape(8, 8) if block else None
    for _copy, distance, turn, photo_id in sorted(candidates):
        similarity = None
        packed = stored.embedding_of(photo_id) if embedding is not None else None
        if packed is not None and embedding is not None:
            similarity = float(unpack_embedding(packed) @ np.asarray(embedding, dtype=np.float32))
        theirs = stored.block_of(photo_id)
        correlation = None
        if mine is not None and theirs is not None:
            correlation = block_correlation(dihedral_block(mine, turn), unpack_block(theirs))
            if correlation < policy.min_correlation:
                continue
        elif distance > DUPLICATE_THRESHOLD or (
            similarity is not None and similarity < policy.min_similarity
        ):
            continue  # indexed before blocks: the rule it was indexed under
        return {
            "photo_id": photo_id,
            "hash_distance": distance,
            "similarity": similarity,
            "transform": DIHEDRAL_NAMES[turn],
            "correlation": correlation,
        }
    return None


def add_to_index(
    index: Index | None, photo_id: str, phash_hex: str, uploaded_at: str, max_photos: int
) -> tuple[Index, list[str]]:
    """The index with this photo added (once), trimmed to the ``max_photos`` newest uploads
    (ties: by photo id); and the photo ids the trim dropped (this one, if it is older than all
    of them)."""
    entries = [entry for entry in (index or []) if entry[0] != photo_id]
    entries.append([photo_id, phash_hex, uploaded_at])
    entries.sort(key=lambda entry: (entry[2], entry[0]))
    cut = max(0, len(entries) - max_photos)
    return entries[cut:], [entry[0] for entry in entries[:cut]]


class DuplicateStore(Protocol):
    """Where earlier batches left each user's index and each photo's embedding and block (the
    tables)."""

    def index_of(self, user_id: str) -> Index | None:
        """The user's index (oldest first), or None."""
        ...

    def embedding_of(self, key: str) -> str | None:
        """The packed embedding of ``keys.photo_key(user, photo)``, or None."""
        ...

    def block_of(self, key: str) -> str | None:
        """The packed DCT block of ``keys.photo_key(user, photo)``, or None (indexed before
        blocks were kept)."""
        ...

    def group_of(self, user_id: str, photo_id: str) -> str:
        """The first photo of a photo's group; its own id when it is no copy (or unknown)."""
        ...


@dataclass
class Findings:
    """What a batch's search found, and what the store must hold after the batch."""

    duplicate_of: list[dict[str, Any] | None] = field(default_factory=list)  # per photo
    indexes: dict[str, Index] = field(default_factory=dict)  # user -> index after the batch
    # photo_key -> its index entry [hash, upload time] to write, or None: to delete (trimmed)
    index_changes: dict[str, list[Any] | None] = field(default_factory=dict)
    embeddings: dict[str, str] = field(default_factory=dict)  # photo_key -> packed embedding
    blocks: dict[str, str] = field(default_factory=dict)  # photo_key -> packed DCT block
    groups: dict[str, str] = field(default_factory=dict)  # photo -> its group's first photo
    groups_before: dict[str, str] = field(default_factory=dict)  # photo -> its group before

    def embedding_of(self, key: str) -> str | None:
        """This batch's embedding of ``key`` (an earlier photo of the same batch)."""
        return self.embeddings.get(key)

    def block_of(self, key: str) -> str | None:
        """This batch's block of ``key``."""
        return self.blocks.get(key)


@dataclass
class _Layered:
    """One user's photos as the search reads them: the batch's findings first, then the store
    (a photo may copy one earlier in its batch)."""

    found: Findings
    store: DuplicateStore
    user: str

    def embedding_of(self, photo_id: str) -> str | None:
        key = photo_key(self.user, photo_id)
        return self.found.embedding_of(key) or self.store.embedding_of(key)

    def block_of(self, photo_id: str) -> str | None:
        key = photo_key(self.user, photo_id)
        return self.found.block_of(key) or self.store.block_of(key)

    def group_of(self, photo_id: str) -> str:
        return self.found.groups.get(photo_id) or self.store.group_of(self.user, photo_id)


class DuplicateSearch:
    """Searches a batch's photos in batch order: a photo may duplicate an earlier one of the
    same batch, which is not in the store yet."""

    def __init__(self, store: DuplicateStore, policy: DuplicatePolicy) -> None:
        self.store, self.policy = store, policy

    def search(self, photos: Sequence[Searched]) -> Findings:
        """One finding per photo, in order."""
        found = Findings()
        for user, photo, uploaded_at, result in photos:
            stored = _Layered(found, self.store, user)
            if user not in found.indexes:
                found.indexes[user] = list(self.store.index_of(user) or [])
            index = [entry for entry in found.indexes[user] if entry[0] != photo]
            embedding = result.fields.get("embedding")
            duplicate = find_duplicate(
                photo,
                index,
                result.phash_variants,
                result.dct_block,
                embedding,
                stored,
                self.policy,
            )
            found.duplicate_of.append(duplicate)
            found.groups_before[photo] = stored.group_of(photo)
            found.groups[photo] = stored.group_of(duplicate["photo_id"]) if duplicate else photo
            phash = result.fields["phash"]
            found.indexes[user], dropped = add_to_index(
                found.indexes[user], photo, phash, uploaded_at, self.policy.max_photos
            )
            found.index_changes[photo_key(user, photo)] = [phash, uploaded_at]
            for old in dropped:  # this photo last: an upload older than all kept is not kept
                found.index_changes[photo_key(user, old)] = None
            if embedding is not None:
                found.embeddings[photo_key(user, photo)] = pack_embedding(embedding)
            if result.dct_block:
                found.blocks[photo_key(user, photo)] = pack_block(result.dct_block)
        return found
