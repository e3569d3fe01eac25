"""exactly_once on Apache Kafka: kill -9 the worker again and again; every upload comes out once.

A ``read_committed`` reader of photos.enriched + photos.failed must see each upload exactly once
(not merely the same event id twice, which at_least_once allows), and the tables, as their
changelogs hold them, must equal those of a run that was never interrupted (the near-duplicate
index included: its entries are ordered by upload time, not by when they were processed).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.kafka.topics import ensure_topics, project_topics
from streams.tail import scan
from streams.worker.local_state import changelog_topic
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    committed_offsets,
    count,
    running,
    wait_consumed,
    wait_for,
)
from tests.worker.publishing import codec, publish_folder

pytestmark = pytest.mark.broker
USERS = {f"user{i}": 50 for i in range(10)}  # 500 uploads over 10 keys (every partition)
KILLS = 5
# the kills land within the first 250 outputs: a worker would have to run 250 photos past the
# last one to finish first, however fast the engine gets (the OCR gate made it outrun 300)
KILL_WINDOW = 250
TABLES = ("photo_state", "user_stats", "dup_index")


def table(settings: Settings, name: str) -> dict[str, Any]:
    """A table as its committed changelog holds it (last value per key; times left out)."""
    folded: dict[str, Any] = {}
    changelog = changelog_topic(settings.worker.app_id, name)
    for record in scan(settings, codec(settings), changelog):  # JSON: no event, raw bytes
        key, value = record.key, record.raw or None
        assert key is not None
        if value is None:
            folded.pop(key.decode(), None)
            continue
        decoded = json.loads(value)
        if isinstance(decoded, dict):
            decoded.pop("updated_at", None)
        folded[key.decode()] = decoded
    return folded


def event_ids(settings: Settings) -> Counter[str]:
    """How often each upload's photo id came out on photos.enriched + photos.failed."""
    seen: Counter[str] = Counter()
    decode = codec(settings)
    for topic in (settings.topics.enriched, settings.topics.failed):
        for record in scan(settings, decode, topic):
            assert record.event is not None, record.error
            seen[record.event.record["photo_id"]] += 1
    return seen


def with_outputs_of_its_own(settings: Settings, name: str) -> Settings:
    """The same uploads, another consumer group and output topics (a second, clean run)."""
    topics = settings.topics.model_copy(
        update={
            "enriched": f"{settings.topics.enriched}.{name}",
            "failed": f"{settings.topics.failed}.{name}",
        }
    )
    worker = settings.worker.model_copy(update={"app_id": f"{settings.worker.app_id}-{name}"})
    own = settings.model_copy(update={"topics": topics, "worker": worker})
    ensure_topics(own, project_topics(own))
    return own


@pytest.mark.timeout(900)
def test_kill_minus_9_five_times_every_upload_comes_out_exactly_once(
    eos_settings: Settings, tmp_path: Path
) -> None:
    write_photos(tmp_path / "photos", USERS, size=96)
    delivered = publish_folder(eos_settings, tmp_path / "photos")
    uploads = {d.photo_id for d in delivered}
    assert len(uploads) == 500

    # kill points: one random output count in each fifth of the kill window (the count
    # includes uncommitted outputs and transaction markers, so kills land inside open
    # transactions, and the last one well before the end)
    rng = random.Random(uuid.uuid4().int)
    span = KILL_WINDOW // KILLS
    thresholds = [rng.randrange(i * span + 5, (i + 1) * span) for i in range(KILLS)]
    topics = (eos_settings.topics.enriched, eos_settings.topics.failed)

    def outputs() -> int:  # committed or not: watermarks
        return sum(count(eos_settings, topic) for topic in topics)

    worker = WorkerProcess(eos_settings, tmp_path, "killed")
    history = [committed_offsets(eos_settings)]
    for threshold in thresholds:
        worker.start().wait_ready()
        wait_for(lambda t=threshold: outputs() >= t, 300, f"{threshold} outputs")
        worker.kill()
        assert len(event_ids(eos_settings)) < len(uploads), "finished before the kill"
        history.append(committed_offsets(eos_settings))
        for partition, offset in history[-1].items():  # a commit never goes back
            assert offset >= history[-2][partition], f"partition {partition}: {history}"

    with running(worker):  # the sixth start runs to the end
        wait_for(lambda: set(event_ids(eos_settings)) >= uploads, 300, "every upload's outcome")
        wait_consumed(eos_settings)
    seen = event_ids(eos_settings)
    assert set(seen) == uploads
    twice = {photo: n for photo, n in seen.items() if n != 1}
    assert not twice, f"uploads seen more than once by a read_committed reader: {twice}"

    clean = with_outputs_of_its_own(eos_settings, "clean")
    with running(WorkerProcess(clean, tmp_path, "clean")):
        wait_consumed(clean, timeout_s=300)
    assert set(event_ids(clean)) == uploads
    for name in TABLES:
        assert table(eos_settings, name) == table(clean, name), f"table {name} differs"
