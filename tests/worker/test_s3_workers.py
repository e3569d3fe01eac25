"""Two workers sharing photos through object storage, as workers on two machines would."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.broker import free_port
from streams.config import Settings
from streams.errors import FailureReason
from tests.conftest import s3_settings
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder
from tests.worker.test_redrive import redrive

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


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_photos_the_store_did_not_serve_come_out_enriched_once_redriven(
    stream_settings: Settings, s3: Settings, tmp_path: Path
) -> None:
    settings = s3_settings(stream_settings, s3.blobs.s3_endpoint or "", s3.blobs.s3_buckets)
    bucket = settings.blobs.s3_buckets[0]
    write_photos(tmp_path / "photos", {"sam": 3}, size=96)
    delivered = publish_folder(settings, tmp_path / "photos", to=f"s3://{bucket}/up")
    # the worker's store does not answer (nothing listens there): BLOB_STORE_UNAVAILABLE
    away = s3_settings(settings, f"http://127.0.0.1:{free_port()}", [bucket], s3_max_attempts=1)
    with running(WorkerProcess(away, tmp_path, "cut-off")):
        _, failed = wait_for_outcomes(settings, len(delivered))
        wait_consumed(settings)
    assert [f["reason"] for f in failed] == [FailureReason.BLOB_STORE_UNAVAILABLE] * 3

    worker = WorkerProcess(settings, tmp_path, "served")
    with running(worker):
        assert "written 3" in redrive(settings, FailureReason.BLOB_STORE_UNAVAILABLE)
        enriched, _ = wait_for_outcomes(settings, 2 * len(delivered))
        wait_consumed(settings)
        assert sorted(e["photo_id"] for e in enriched) == sorted(d.photo_id for d in delivered)
        assert all(e["attempt"] == 2 for e in enriched)
        wait_for(
            lambda: worker.get("/users/sam")[1].get("photos") == 3,
            30,
            "the user's photos counted",
            detail=lambda: worker.get("/users/sam"),
        )
        assert worker.get("/users/sam")[1]["failed"] == 0
