"""`replay --reprocess` meets a poison photo: it becomes that photo's INTERNAL_ERROR dead letter
and the replay goes on (the same policy as the worker's, streams/pipeline/poison.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.errors import FailureReason
from streams.pipeline.outputs import OutputBuilder
from tests.cli.runner import darkroom
from tests.photos import write_photos
from tests.worker.harness import read_topic
from tests.worker.poisoned_worker import poisoned
from tests.worker.publishing import publish_folder

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_reprocess_turns_a_poison_photo_into_a_dead_letter_and_goes_on(
    kafka: Settings,
    kafka_env: dict[str, str],
    tmp_path: Path,
    repository: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = write_photos(tmp_path / "photos", {"ann": 2, "ben": 2}, size=96)
    paths[0].rename(paths[0].with_name("poison.jpg"))
    delivered = publish_folder(kafka, tmp_path / "photos")
    monkeypatch.setattr(OutputBuilder, "enriched", poisoned)

    result = darkroom("replay", "--topic", kafka.topics.uploaded, "--reprocess", env=kafka_env)

    assert result.exit_code == 0, result.output
    assert "written 4, skipped 0" in result.stdout
    enriched = read_topic(kafka, kafka.topics.enriched)
    (dead,) = read_topic(kafka, kafka.topics.failed)
    assert (dead["reason"], dead["stage"]) == (FailureReason.INTERNAL_ERROR, "build")
    by_file = {d.file.path.name: d.photo_id for d in delivered}
    assert dead["photo_id"] == by_file["poison.jpg"]
    assert sorted(e["photo_id"] for e in enriched) == sorted(
        d.photo_id for d in delivered if d.photo_id != dead["photo_id"]
    )
