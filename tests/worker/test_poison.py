"""A poison message (one photo a pipeline step raises on, every time) costs that photo, not its
partition: the batch is retried photo by photo, the photo becomes an INTERNAL_ERROR dead letter
with its bytes, the others come out, and a restart neither loses nor repeats anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import Settings
from streams.errors import FailureReason
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    outcomes,
    read_topic,
    running,
    wait_consumed,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_a_poison_photo_becomes_a_dead_letter_and_its_partition_goes_on(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    paths = write_photos(tmp_path / "photos", {"alice": 4, "bob": 2}, size=96)
    paths[1].rename(paths[1].with_name("poison.jpg"))  # alice's second photo
    poisoned = WorkerProcess(settings, tmp_path, "poisoned", module="tests.worker.poisoned_worker")
    with running(poisoned):
        delivered = publish_folder(settings, tmp_path / "photos")
        enriched, failed = wait_for_outcomes(settings, len(delivered))
        wait_consumed(settings)  # the partition went on past the poison: all committed
        assert "darkroom_poisoned_batches_total 1.0" in poisoned.metrics()

    assert len(enriched) == len(delivered) - 1
    (dead,) = failed
    assert dead["reason"] == FailureReason.INTERNAL_ERROR
    assert (dead["stage"], dead["detail"]) == ("build", "ValueError: poisoned by poison.jpg")
    uploads = {u["photo_id"]: u for u in read_topic(settings, settings.topics.uploaded)}
    assert dead["original_value"] == uploads[dead["photo_id"]]["_value"]  # kept for a re-drive
    assert uploads[dead["photo_id"]]["filename"] == "poison.jpg"

    # restarted (without the bug): nothing of the first run is processed again or lost
    write_photos(tmp_path / "more", {"carol": 2}, size=96)
    fixed = WorkerProcess(settings, tmp_path, "fixed")
    with running(fixed):
        more = publish_folder(settings, tmp_path / "more")
        wait_for_outcomes(settings, len(delivered) + len(more))
        wait_consumed(settings)
    enriched, failed = outcomes(settings)
    assert len(failed) == 1
    assert sorted(e["photo_id"] for e in enriched) == sorted(
        d.photo_id for d in [*delivered, *more] if d.photo_id != dead["photo_id"]
    )
