"""`darkroom forget` end to end on each broker: a deleted photo and an erased user leave the
worker's answers, downstream learns it from a PhotoRemoved, and an upload after the erasure is
refused without its bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings, settings_env
from streams.errors import FailureReason
from streams.pipeline.keys import photo_key
from tests.cli.runner import darkroom
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, read_topic, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

pytestmark = pytest.mark.broker


def removals(settings: Settings) -> list[dict[str, Any]]:
    """The PhotoRemoved events on photos.enriched so far."""
    events = read_topic(settings, settings.topics.enriched)
    return [e for e in events if "request_event_id" in e]


@pytest.mark.timeout(300)
def test_a_deleted_photo_and_an_erased_user_leave_every_answer(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings, env = stream_settings, settings_env(stream_settings)

    def verify(*args: str) -> Any:
        return darkroom("forget", "--verify", *args, env=env)

    write_photos(tmp_path / "photos", {"ann": 3, "bob": 2}, size=160)
    delivered = publish_folder(settings, tmp_path / "photos")
    worker = WorkerProcess(settings, tmp_path, "w")
    with running(worker):
        wait_for_outcomes(settings, len(delivered))
        wait_for(lambda: worker.get("/users/ann")[1].get("photos") == 3, 60, "ann's photos")
        wait_for(lambda: worker.get("/users/bob")[1].get("photos") == 2, 60, "bob's photos")
        gone = next(d.photo_id for d in delivered if d.user_id == "ann")
        before = verify("--user", "ann", "--photo", gone)
        assert before.exit_code == 1 and f"photo_state {photo_key('ann', gone)}" in before.stdout
        assert f"left: assets file://{settings.blobs.root.resolve()}/.assets/ann/" in before.stdout

        sent = darkroom("forget", "--user", "ann", "--photo", gone, env=env)
        assert sent.exit_code == 0, sent.output
        assert "sent PhotoDeleted" in sent.stdout and gone in sent.stdout
        wait_for(lambda: removals(settings), 60, "the PhotoRemoved of ann's photo")
        assert worker.get(f"/users/ann/photos/{gone}")[0] == 404
        assert worker.get("/users/ann")[1]["photos"] == 2
        # every changelog read to its end: nothing of the photo but its marker
        left = wait_for(
            lambda: (r := verify("--user", "ann", "--photo", gone)).exit_code == 0 and r,
            60,
            "the photo's keys gone from every changelog",
            detail=lambda: verify("--user", "ann", "--photo", gone).stdout,
        )
        assert "but 1 marker(s)" in left.stdout

        refused = darkroom("forget", "--user", "bob", env=env)  # no terminal, no --yes
        assert refused.exit_code == 2 and "--yes" in refused.stderr
        assert darkroom("forget", "--user", "bob", "--yes", env=env).exit_code == 0
        wait_for(lambda: len(removals(settings)) == 2, 60, "the PhotoRemoved of bob")
        for page in ("/users/bob", "/users/bob/tags"):
            assert worker.get(page)[0] == 404, page
        assert worker.get("/users/bob/people")[1]["people"] == []
        for photo in (d.photo_id for d in delivered if d.user_id == "bob"):
            assert worker.get(f"/users/bob/photos/{photo}")[0] == 404
        wait_for(
            lambda: verify("--user", "bob").exit_code == 0,
            60,
            "every key of bob gone from every changelog",
            detail=lambda: verify("--user", "bob").stdout,
        )
        assert "ann" not in verify("--user", "bob").stdout
        assert verify("--user", "ann").exit_code == 1  # ann still has two photos

        # bob uploads again after his erasure: refused, and nothing of it kept
        again = publish_folder(settings, tmp_path / "photos" / "bob")
        _, failed = wait_for_outcomes(settings, len(delivered) + 2 + len(again))
        refused_uploads = [f for f in failed if f["user_id"] == "bob"]
        assert [f["reason"] for f in refused_uploads] == [FailureReason.USER_ERASED] * 2
        assert all(f["original_value"] == b"" for f in refused_uploads)
        assert worker.get("/users/bob")[0] == 404
        # a backfill reads what was forgotten first: none of it is enriched again
        replay = darkroom("replay", "--topic", settings.topics.uploaded, "--reprocess", env=env)
        assert replay.exit_code == 0, replay.output
        assert f"forgotten {1 + 2 + len(again)}" in replay.stdout, replay.stdout
    ann, bob = removals(settings)
    assert (ann["user_id"], ann["photo_id"], bob["user_id"], bob["photo_id"]) == (
        "ann",
        gone,
        "bob",
        None,
    )
