"""Near-duplicate search rules, without Kafka or models."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from streams.engine.results import Enriched
from streams.imaging.decode import Decoder
from streams.imaging.features import extract_features
from streams.imaging.phash import dihedral_block
from streams.pipeline import dedup
from streams.pipeline.memory import MemoryStore
from streams.samples import encode_jpeg, load_photo

POLICY = dedup.DuplicatePolicy(max_distance=20, min_similarity=0.8, max_photos=5)
BLOCK = np.arange(64, dtype=np.float64).reshape(8, 8) % 7 - 3.0  # any block with AC energy
OTHER = np.arange(64, dtype=np.float64).reshape(8, 8) % 5 - 2.0


def one_user(store: MemoryStore) -> dedup.Earlier:
    """The store as find_duplicate reads it: one user's photos by photo id."""

    class Earlier:
        def embedding_of(self, photo_id: str) -> str | None:
            return store.embedding_of(photo_id)

        def block_of(self, photo_id: str) -> str | None:
            return store.block_of(photo_id)

        def group_of(self, photo_id: str) -> str:
            return store.group_of("u", photo_id)

    return Earlier()


def indexed(*entries: tuple[str, int]) -> dedup.Index:
    index = None
    for photo_id, hashed in entries:
        index, _ = dedup.add_to_index(index, photo_id, f"{hashed:016x}", "t", POLICY.max_photos)
    assert index is not None
    return index


def test_a_turned_copy_is_judged_by_its_block_turned_back_not_by_the_embedding() -> None:
    index = indexed(("original", 0xF0F0))
    store = MemoryStore(
        embeddings={"original": dedup.pack_embedding([1.0, 0.0])},
        blocks={"original": dedup.pack_block(BLOCK.ravel())},
    )
    copy = dihedral_block(BLOCK, 1)  # the original turned 90 degrees counter-clockwise
    variants = [0xFFFF_0000] * 8
    variants[3] = 0xF0F1  # turned by rot270 it hashes 1 bit from the original
    found = dedup.find_duplicate(
        "new", index, variants, copy.ravel().tolist(), [0.0, 1.0], one_user(store), POLICY
    )
    assert found is not None and found["transform"] == "rot270" and found["hash_distance"] == 1
    assert found["correlation"] > 0.999 and found["similarity"] == 0.0  # the embedding disagreed


def test_a_hash_match_whose_block_does_not_correlate_is_no_copy() -> None:
    index = indexed(("lookalike", 0xF0F0))
    store = MemoryStore(blocks={"lookalike": dedup.pack_block(OTHER.ravel())})
    assert (
        dedup.find_duplicate(
            "new", index, [0xF0F0], BLOCK.ravel().tolist(), None, one_user(store), POLICY
        )
        is None
    )


def test_a_closer_lookalike_does_not_hide_a_real_copy() -> None:
    index = indexed(("lookalike", 0xF0F0), ("copy", 0xF0F3))
    store = MemoryStore(
        blocks={
            "lookalike": dedup.pack_block(OTHER.ravel()),
            "copy": dedup.pack_block(BLOCK.ravel()),
        }
    )
    found = dedup.find_duplicate(
        "new", index, [0xF0F0], BLOCK.ravel().tolist(), None, one_user(store), POLICY
    )
    assert found is not None and found["photo_id"] == "copy" and found["hash_distance"] == 2


def test_photos_indexed_before_blocks_keep_the_old_rule() -> None:
    index = indexed(("old", 0xF0F0))
    store = MemoryStore(embeddings={"old": dedup.pack_embedding([1.0, 0.0])})  # no block stored
    mine = BLOCK.ravel().tolist()
    found = dedup.find_duplicate("new", index, [0xF0F1], mine, [1.0, 0.0], one_user(store), POLICY)
    assert found is not None and found["correlation"] is None and found["similarity"] == 1.0
    assert (
        dedup.find_duplicate("new", index, [0xF0F1], mine, [0.0, 1.0], one_user(store), POLICY)
        is None
    )
    twelve_bits = 0xF0F0 ^ 0xFFF  # a candidate under max_distance 20, but the old rule said 10
    assert (
        dedup.find_duplicate("new", index, [twelve_bits], mine, [1.0, 0.0], one_user(store), POLICY)
        is None
    )


def test_a_hash_at_exactly_the_limit_still_matches() -> None:
    policy = dedup.DuplicatePolicy(max_distance=2, min_similarity=0.8, max_photos=3)
    index, _ = dedup.add_to_index(None, "original", f"{0b1111:016x}", "t", policy.max_photos)
    store = MemoryStore(blocks={"original": dedup.pack_block(BLOCK.ravel())})
    mine = BLOCK.ravel().tolist()
    found = dedup.find_duplicate(
        "new", index, [0b1100], mine, None, one_user(store), policy
    )  # 2 bits off
    assert found is not None and found["hash_distance"] == 2
    assert dedup.find_duplicate("new", index, [0b1000], mine, None, one_user(store), policy) is None


def test_the_index_keeps_each_photo_once_and_the_newest_uploads() -> None:
    index: dedup.Index | None = None
    dropped: list[list[str]] = []
    uploads = [("b", "2026-01-02"), ("a", "2026-01-01"), ("c", "2026-01-03"), ("d", "2026-01-04")]
    for name, uploaded in uploads:
        index, gone = dedup.add_to_index(index, name, "0", uploaded, max_photos=3)
        dropped.append(gone)
    assert [entry[0] for entry in index] == ["b", "c", "d"]  # by upload, not processing
    assert dropped == [[], [], [], ["a"]]  # what the worker deletes: one key, the oldest
    old, gone = dedup.add_to_index(index, "e", "0", "2025-12-31", max_photos=3)
    assert old == index and gone == ["e"]  # older than all kept: not kept
    first, _ = dedup.add_to_index(None, "a", "1", "t", 10)
    roomy, _ = dedup.add_to_index(first, "a", "2", "t", 10)
    assert roomy == [["a", "2", "t"]]  # a photo indexed again replaces its entry


def features_of(photo_id: str, image: np.ndarray) -> dedup.Searched:
    """A photo as the engine would hand it to the search (model-free fields only)."""
    decoded = Decoder(max_pixels=10**8, min_side=512).decode(encode_jpeg(image, 92))
    fields, produced_by, hashes, block = extract_features(decoded, blur_threshold=50.0)
    return "u", photo_id, photo_id, Enriched(photo_id, fields, produced_by, {}, hashes, block)


def test_a_portrait_turned_90_and_reencoded_is_a_copy_and_a_burst_is_not() -> None:
    portrait = load_photo("obama")
    height, width = portrait.shape[:2]
    pan = np.array([[1.1, 0, -0.25 * width], [0, 1.1, -0.05 * height]], dtype=np.float32)
    burst = cv2.warpAffine(portrait, pan, (width, height), borderMode=cv2.BORDER_REFLECT)
    search = dedup.DuplicateSearch(MemoryStore(), POLICY)
    found = search.search(
        [
            features_of("original", portrait),
            features_of("turned", np.ascontiguousarray(np.rot90(portrait))),
            features_of("burst", burst),
        ]
    )
    original, turned, later = found.duplicate_of
    assert original is None and later is None  # the same scene a moment later is not a copy
    assert turned is not None and turned["photo_id"] == "original"
    assert turned["transform"] == "rot270" and turned["correlation"] > 0.9


def test_an_embedding_is_kept_in_8_bits_and_one_kept_in_float16_still_reads() -> None:
    rng = np.random.default_rng(3)
    vector = rng.normal(0, 1, 1280).astype(np.float32)
    vector /= np.linalg.norm(vector)
    packed = dedup.pack_embedding(vector)
    assert packed.startswith(dedup.QUANTISED) and len(packed) < 1800  # float16 took 3,416
    back = dedup.unpack_embedding(packed)
    step = np.abs(vector).max() / 127
    assert np.abs(back - vector).max() <= step / 2 + 1e-7  # rounding, no more
    assert float(back @ vector) > 0.9999
    legacy = base64.b64encode(vector.astype(np.float16).tobytes()).decode("ascii")
    assert np.allclose(dedup.unpack_embedding(legacy), vector, atol=1e-3)
    assert not dedup.unpack_embedding(dedup.pack_embedding([0.0, 0.0])).any()
