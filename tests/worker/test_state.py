"""The worker's bookkeeping rules, without Kafka."""

from __future__ import annotations

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
