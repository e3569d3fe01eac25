"""Two workers sharing photos through object storage, as workers on two machines would."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import Settings
from tests.conftest import s3_settings
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

# the store is what is tested here, not the broker: tansu only (Apache Kafka's group handling
# is covered by test_failover.py)
pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]
USERS = {f"user{i}": 4 for i in range(8)}  # 32 photos over 8 keys: both workers get some


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_two_workers_enrich_photos_that_live_only_in_the_store(
    stream_settings: Settings, s3: Settings, tmp_path: Path
) -> None:
    settings = s3_settings(stream_settings, s3.blobs.s3_endpoint or "", s3.blobs.s3_buckets)
    bucket = settings.blobs.s3_buckets[0]

    def alone(name: str) -> WorkerProcess:
        # each worker has a blob root of its own, empty: a file:// photo would fail there
        blobs = settings.blobs.model_copy(update={"root": tmp_path / name / "blobs"})
        return WorkerProcess(settings.model_copy(update={"blobs": blobs}), tmp_path, name)

    def split() -> bool:
        a = set(first.get("/healthz")[1].get("partitions", []))
        b = set(second.get("/healthz")[1].get("partitions", []))
        return bool(a and b and not a & b and a | b == {0, 1, 2, 3})

    first, second = alone("a"), alone("b")
    with running(first, second):
        wait_for(split, 60, "partitions split between the two workers")
        write_photos(tmp_path / "photos", USERS, size=320)
        delivered = publish_folder(settings, tmp_path / "photos", to=f"s3://{bucket}/up")
        assert not settings.blobs.root.exists()  # the photos are in the store only
        enriched, failed = wait_for_outcomes(settings, len(delivered))
    assert not failed, failed[0]["detail"]
    assert {e["photo_id"] for e in enriched} == {d.photo_id for d in delivered}
    pids = {str(w.process.pid) for w in (first, second) if w.process is not None}
    workers = {e["worker"].rsplit(":", 1)[-1] for e in enriched}
    assert workers == pids  # both enriched photos, each fetching them from the store
    assert all(not (tmp_path / name / "blobs").exists() for name in "ab")
