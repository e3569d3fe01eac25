"""Re-drive, end to end: each re-drivable dead letter, once its cause is fixed, goes back with
`darkroom replay --topic photos.failed --reason R --into photos.uploaded` (no --force) and
comes out enriched, as a new attempt that supersedes the dead letter; the user's counts say so.
(BLOB_STORE_UNAVAILABLE, which needs an object store, is in test_s3_workers.py.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings, settings_env
from streams.errors import FailureReason
from tests.cli.runner import darkroom
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    outcomes,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import produce, publish_folder, upload

pytestmark = [pytest.mark.broker, pytest.mark.timeout(400)]


def latest(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per photo, its latest outcome as schemas/README.md tells consumers to pick it."""
    best: dict[str, dict[str, Any]] = {}
    for event in events:
        when = event.get("enriched_at") or event["failed_at"]
        photo = event["photo_id"]
        if photo not in best or (event["attempt"], when) > (
            best[photo]["attempt"],
            best[photo].get("enriched_at") or best[photo]["failed_at"],
        ):
            best[photo] = event
    return best


def redrive(settings: Settings, reason: str) -> str:
    result = darkroom(
        "replay",
        "--topic",
        settings.topics.failed,
        "--reason",
        reason,
        "--into",
        settings.topics.uploaded,
        env=settings_env(settings),
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_each_redrivable_dead_letter_comes_out_enriched_once_redriven(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    # a worker whose per-photo deadline nobody can meet: DEADLINE_EXCEEDED
    write_photos(tmp_path / "late", {"dora": 2}, size=96)
    engine = settings.engine.model_copy(update={"photo_deadline_s": 1e-6})
    hurried = WorkerProcess(settings.model_copy(update={"engine": engine}), tmp_path, "hurried")
    with running(hurried):
        publish_folder(settings, tmp_path / "late")
        wait_for_outcomes(settings, 2)
        wait_consumed(settings)

    # a worker with two bugs (INTERNAL_ERROR, INFERENCE_ERROR), and bytes not there yet
    paths = write_photos(tmp_path / "buggy", {"paul": 2, "ivy": 2}, size=96)
    paths[0].rename(paths[0].with_name("poison.jpg"))
    ivy = next(d for d in publish_folder(settings, tmp_path / "buggy") if d.user_id == "ivy")
    later = settings.blobs.root / "mallory" / "later.jpg"
    produce(settings, [(b"mallory", upload(settings, "later", later.as_uri()))])
    buggy = WorkerProcess(
        settings,
        tmp_path,
        "buggy",
        module="tests.worker.poisoned_worker",
        env={"POISON_INFERENCE": ivy.photo_id},
    )
    with running(buggy):
        wait_for_outcomes(settings, 7)
        wait_consumed(settings)
    enriched, failed = outcomes(settings)
    reasons = Counter(f["reason"] for f in failed)
    assert reasons == {
        FailureReason.DEADLINE_EXCEEDED: 2,
        FailureReason.INTERNAL_ERROR: 1,
        FailureReason.INFERENCE_ERROR: 1,
        FailureReason.BLOB_MISSING: 1,
    }, [(f["reason"], f["detail"]) for f in failed]
    assert all(f["attempt"] == 1 for f in [*enriched, *failed])

    # fixed: the bytes where the event says, a worker without the bugs; each reason re-driven
    later.parent.mkdir(parents=True, exist_ok=True)
    later.write_bytes(paths[1].read_bytes())
    fixed = WorkerProcess(settings, tmp_path, "fixed")
    with running(fixed):
        for reason, count in reasons.items():
            assert f"written {count}" in redrive(settings, reason)
        wait_for_outcomes(settings, 7 + 5)
        wait_consumed(settings)
        enriched, failed = outcomes(settings)
        assert len(enriched) + len(failed) == 12
        final = latest([*enriched, *failed])
        assert {p: e.get("enriched_at") is not None for p, e in final.items()} == dict.fromkeys(
            final, True
        ), "a re-driven photo's latest outcome is not its enrichment"
        for dead in failed:  # each answered by a new attempt at the same upload
            (answer,) = [e for e in enriched if e["upload_event_id"] == dead["upload_event_id"]]
            assert (dead["attempt"], answer["attempt"]) == (1, 2)
        ids = [e["event_id"] for e in [*enriched, *failed]]
        assert len(set(ids)) == len(ids)  # deduplicating on event_id keeps every outcome
        for user, photos in {"dora": 2, "paul": 2, "ivy": 2, "mallory": 1}.items():
            wait_for(
                lambda u=user, n=photos: fixed.get(f"/users/{u}")[1].get("photos") == n,
                30,
                f"{user}'s photos counted",
                detail=lambda u=user: fixed.get(f"/users/{u}"),
            )
            assert fixed.get(f"/users/{user}")[1]["failed"] == 0

        # re-driving them again changes nothing: every photo is done with these models
        assert "written 2" in redrive(settings, FailureReason.DEADLINE_EXCEEDED)
        wait_consumed(settings)
        assert sum(map(len, outcomes(settings))) == 12
