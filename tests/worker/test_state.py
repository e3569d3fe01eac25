"""The worker's bookkeeping rules, without Kafka."""

from __future__ import annotations

from streams.pipeline.outputs import Attempt
from streams.worker import state

V1 = {"m": "1"}


def enriched(
    label: str,
    faces: int = 0,
    flagged: bool = False,
    duplicate: str | None = None,
    versions: dict[str, str] = V1,
    tags: list[str] | None = None,
) -> state.PhotoState:
    summary = {
        "labels": [label],
        "tags": tags or [],
        "faces": faces,
        "flagged": flagged,
        "text": "",
        "duplicate_of": duplicate,
        "bytes": 100,
        "size": [1, 1],
    }
    return state.enriched_state("e1", versions, summary, user_id="u")


def test_done_means_same_models_for_enriched_and_same_event_for_failed() -> None:
    assert not state.already_done(None, "e1", V1)
    assert state.already_done(enriched("cat"), "another-event", V1)
    assert not state.already_done(enriched("cat"), "e1", {"m": "2"})
    failed = state.failed_state("e1", "CORRUPT_IMAGE", "decode_image", "bad", user_id="u")
    assert state.already_done(failed, "e1", V1)  # a redelivery
    assert not state.already_done(failed, "e2", V1)  # another upload of the photo
    # a re-drive copies the upload, event id and all, under its replay's id: a new attempt
    assert not state.already_done(failed, "e1", V1, attempt_key="replay-1")
    redriven = state.failed_state(
        "e1", "CORRUPT_IMAGE", "decode_image", "bad", user_id="u", attempt=Attempt(2, "replay-1")
    )
    assert state.already_done(redriven, "e1", V1, attempt_key="replay-1")  # its redelivery


def test_attempts_count_up_except_for_a_redelivery() -> None:
    assert state.attempt_number(None, "e1", "", V1) == 1
    first = state.failed_state("e1", "INTERNAL_ERROR", "build", "bug", user_id="u")
    assert state.attempt_number(first, "e1", "", V1) == 1  # the same message again
    assert state.attempt_number(first, "e1", "replay-1", V1) == 2  # re-driven
    assert state.attempt_number(first, "e2", "", V1) == 2  # uploaded again
    second = state.enriched_state("e1", V1, {}, user_id="u", attempt=Attempt(2, "replay-1"))
    assert state.attempt_number(second, "e1", "replay-1", V1) == 2
    assert state.attempt_number(second, "e1", "replay-2", V1) == 3
    # the same message again after a model upgrade: re-enriched, a new attempt
    assert state.attempt_number(second, "e1", "replay-1", {"m": "2"}) == 3
    # a state from before attempts were kept reads as attempt 1 of the original upload
    old = {k: v for k, v in first.items() if k not in ("attempt", "attempt_key")}
    assert state.attempt_number(old, "e1", "", V1) == 1
    assert state.attempt_number(old, "e1", "replay-1", V1) == 2


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
        "tags": {},
    }
    rerun = state.update_stats(
        stats,
        enriched("cat", faces=2, duplicate="p0"),
        enriched("tabby", faces=1, duplicate="p0", versions={"m": "2"}),
    )
    assert (
        rerun["photos"] == 2 and rerun["faces"] == 1 and rerun["labels"] == {"tabby": 1, "dog": 1}
    )
    failed = state.update_stats(rerun, None, state.failed_state("e9", "X", "s", "d", user_id="u"))
    assert failed["failed"] == 1 and failed["photos"] == 2


def test_tag_counts_follow_a_photos_latest_tags() -> None:
    stats = state.update_stats(None, None, enriched("tabby", tags=["Cat", "Pet", "Animal"]))
    stats = state.update_stats(stats, None, enriched("dog", tags=["Dog", "Pet", "Animal"]))
    assert stats["tags"] == {"Cat": 1, "Dog": 1, "Pet": 2, "Animal": 2}
    old = enriched("dog", tags=["Dog", "Pet", "Animal"])
    new = enriched("wolf", tags=["Animal"], versions={"m": "2"})
    stats = state.update_stats(stats, old, new)
    assert stats["tags"] == {"Cat": 1, "Pet": 1, "Animal": 2}  # Dog gone, no zero left behind
    assert state.tag_changes(old, new) == (["Dog", "Pet"], [])
    gone = state.failed_state("e2", "CORRUPT_IMAGE", "decode_image", "bad", user_id="u")
    assert state.tag_changes(new, gone) == (["Animal"], [])
    assert state.tag_changes(None, old) == ([], ["Dog", "Pet", "Animal"])


def test_stats_written_before_tags_existed_still_update() -> None:
    before = {"photos": 1, "failed": 0, "bytes": 1, "faces": 0, "flagged": 0, "duplicates": 0}
    old_summary = state.enriched_state(
        "e0", V1, {**enriched("cat")["summary"], "tags": None}, user_id="u"
    )
    stats = state.update_stats(
        {**before, "labels": {"cat": 1}}, old_summary, enriched("cat", tags=["Cat"])
    )
    assert stats["tags"] == {"Cat": 1} and stats["photos"] == 1
