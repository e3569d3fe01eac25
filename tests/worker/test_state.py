"""The worker's bookkeeping rules, without Kafka."""

from __future__ import annotations

from streams.pipeline import dedup
from streams.worker import state

V1 = {"m": "1"}


def enriched(
    label: str,
    faces: int = 0,
    flagged: bool = False,
    duplicate: str | None = None,
    versions: dict[str, str] = V1,
) -> state.PhotoState:
    summary = {
        "labels": [label],
        "faces": faces,
        "flagged": flagged,
        "text": "",
        "duplicate_of": duplicate,
        "bytes": 100,
        "size": [1, 1],
    }
    return state.enriched_state("e1", versions, summary)


def test_done_means_same_models_for_enriched_and_same_event_for_failed() -> None:
    assert not state.already_done(None, "e1", V1)
    assert state.already_done(enriched("cat"), "another-event", V1)
    assert not state.already_done(enriched("cat"), "e1", {"m": "2"})
    failed = state.failed_state("e1", "CORRUPT_IMAGE", "decode_image", "bad")
    assert state.already_done(failed, "e1", V1)
    assert not state.already_done(failed, "e2", V1)  # a re-driven dead letter is a new try


def test_stats_replace_a_photos_old_contribution() -> None:
    stats = state.update_stats(None, None, enriched("cat", faces=2, duplicate="p0"))
    stats = state.update_stats(stats, None, enriched("dog", flagged=True))
    assert stats == {
        "photos": 2,
        "failed": 0,
        "bytes": 200,
        "faces": 2,
        "flagged": 1,
        "duplicates": 1,
        "labels": {"cat": 1, "dog": 1},
    }
    rerun = state.update_stats(
        stats,
        enriched("cat", faces=2, duplicate="p0"),
        enriched("tabby", faces=1, duplicate="p0", versions={"m": "2"}),
    )
    assert (
        rerun["photos"] == 2 and rerun["faces"] == 1 and rerun["labels"] == {"tabby": 1, "dog": 1}
    )
    failed = state.update_stats(rerun, None, state.failed_state("e9", "X", "s", "d"))
    assert failed["failed"] == 1 and failed["photos"] == 2


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
