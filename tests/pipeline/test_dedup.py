"""Near-duplicate search rules, without Kafka or models."""

from __future__ import annotations

from streams.pipeline import dedup


def test_duplicates_match_rotations_and_need_the_embedding_to_agree() -> None:
    policy = dedup.DuplicatePolicy(max_distance=4, min_similarity=0.8, max_photos=3)
    index = dedup.add_to_index(None, "original", f"{0xF0F0:016x}", policy.max_photos)
    unit = [1.0, 0.0]
    stored = {"original": dedup.pack_embedding(unit)}
    rotated_variants = [0xFFFF_0000, 0xF0F1]  # the second variant is 1 bit from the original
    found = dedup.find_duplicate(index, rotated_variants, unit, stored.get, policy)
    assert found == {"photo_id": "original", "hash_distance": 1, "similarity": 1.0}
    assert dedup.find_duplicate(index, rotated_variants, [0.0, 1.0], stored.get, policy) is None
    assert dedup.find_duplicate(index, [0xFFFF_0000], unit, stored.get, policy) is None
    assert dedup.find_duplicate(index, [0xF0F1], None, stored.get, policy)["similarity"] is None


def test_the_index_keeps_each_photo_once_and_the_most_recent() -> None:
    index = None
    for name in ("a", "b", "a", "c", "d"):
        index = dedup.add_to_index(index, name, "0", max_photos=3)
    assert [entry[0] for entry in index] == ["a", "c", "d"]
    roomy = dedup.add_to_index(dedup.add_to_index(None, "a", "1", 10), "a", "2", 10)
    assert roomy == [["a", "2"]]  # a photo indexed again replaces its entry


def test_a_hash_at_exactly_the_limit_still_matches() -> None:
    policy = dedup.DuplicatePolicy(max_distance=2, min_similarity=0.8, max_photos=3)
    index = dedup.add_to_index(None, "original", f"{0b1111:016x}", policy.max_photos)
    found = dedup.find_duplicate(index, [0b1100], None, lambda _: None, policy)  # 2 bits off
    assert found is not None and found["hash_distance"] == 2
    assert dedup.find_duplicate(index, [0b1000], None, lambda _: None, policy) is None


def test_a_closer_hash_that_the_embedding_rejects_does_not_hide_a_real_copy() -> None:
    policy = dedup.DuplicatePolicy(max_distance=4, min_similarity=0.8, max_photos=5)
    index = dedup.add_to_index(None, "lookalike", f"{0xF0F0:016x}", policy.max_photos)
    index = dedup.add_to_index(index, "copy", f"{0xF0F3:016x}", policy.max_photos)
    stored = {
        "lookalike": dedup.pack_embedding([0.0, 1.0]),
        "copy": dedup.pack_embedding([1.0, 0.0]),
    }
    found = dedup.find_duplicate(index, [0xF0F0], [1.0, 0.0], stored.get, policy)
    assert found is not None and found["photo_id"] == "copy" and found["hash_distance"] == 2
