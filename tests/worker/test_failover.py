"""Crashes and rebalances: kill -9 mid-stream, two workers, a worker taking over; a table
partition revoked and taken back in one process."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.config import Settings
from streams.worker.app import DarkroomApp
from streams.worker.tables import Table
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    count,
    outcomes,
    read_topic,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder

# Each worker test's step waits on its own deadline and says what it waited for; the test as a
# whole gets room for all of them (300 s: on a busy Apache Kafka a takeover alone took over a
# minute once in CI, and the suite's 120 s default then cut the test short without saying which
# step was slow).
USERS = {f"user{i}": 8 for i in range(8)}  # 64 photos over 8 keys: every partition gets some


def users_stats(worker: WorkerProcess) -> dict[str, object]:
    return {user: worker.get(f"/users/{user}")[1] for user in USERS}


@pytest.mark.broker
@pytest.mark.timeout(300)
def test_kill_minus_9_mid_stream_loses_nothing_and_duplicates_nothing(
    stream_settings: Settings, tmp_path: Path
) -> None:
    # small batches of large-ish photos: slow enough to be killed in the middle
    settings = stream_settings.model_copy(
        update={"worker": stream_settings.worker.model_copy(update={"batch_size": 4})}
    )
    write_photos(tmp_path / "photos", USERS, size=640)
    delivered = publish_folder(settings, tmp_path / "photos")
    worker = WorkerProcess(settings, tmp_path, "crashy")
    worker.start().wait_ready()
    wait_for(lambda: count(settings, settings.topics.enriched) >= 8, 60, "some outcomes")
    worker.kill()
    mid = sum(map(len, outcomes(settings)))
    assert mid < len(delivered), "the worker finished before the kill: the test proves nothing"

    with running(worker):  # same data folder: it resumes from its own RocksDB + committed offsets
        enriched, failed = wait_for_outcomes(settings, len(delivered))
        assert not failed
        wait_consumed(settings)
        enriched, _ = outcomes(settings)
        by_photo: dict[str, set[str]] = {}
        for event in enriched:
            by_photo.setdefault(event["photo_id"], set()).add(event["event_id"])
        assert set(by_photo) == {d.photo_id for d in delivered}  # every photo accounted for
        assert all(len(ids) == 1 for ids in by_photo.values())  # re-emitted = same event id
        wait_for(
            lambda: all(s.get("photos") == 8 for s in users_stats(worker).values()),  # type: ignore[attr-defined]
            60,
            "the tables to count every photo once",
        )
        crashed_stats = users_stats(worker)

    clean = WorkerProcess(
        settings.model_copy(
            update={
                "worker": settings.worker.model_copy(
                    update={"app_id": settings.worker.app_id + "-clean"}
                )
            }
        ),
        tmp_path,
        "clean",
    )
    with running(clean):
        wait_for(lambda: users_stats(clean) == crashed_stats, 60, "a clean run's tables")
    assert all(stats["photos"] == 8 for stats in crashed_stats.values())  # type: ignore[index]


@pytest.mark.broker
@pytest.mark.timeout(300)
def test_two_workers_split_partitions_route_queries_and_take_over(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    first, second = WorkerProcess(settings, tmp_path, "a"), WorkerProcess(settings, tmp_path, "b")
    with running(first, second):

        def split() -> tuple[set[int], set[int]] | None:
            a = set(first.get("/healthz")[1].get("partitions", []))
            b = set(second.get("/healthz")[1].get("partitions", []))
            return (a, b) if a and b and not a & b and a | b == {0, 1, 2, 3} else None

        owned_a, _ = wait_for(split, 60, "partitions split between two workers")
        write_photos(tmp_path / "photos", USERS, size=320)
        delivered = publish_folder(settings, tmp_path / "photos")
        wait_for_outcomes(settings, 10)

        # a query asked of the wrong worker is answered by the owner
        uploads = read_topic(settings, settings.topics.uploaded)
        owner_of = {u["user_id"]: u["_partition"] for u in uploads}
        user_on_a = next(u for u, p in owner_of.items() if p in owned_a)
        wait_for(
            lambda: first.get(f"/users/{user_on_a}")[0] == 200,
            60,
            "a's user processed",
            # seen once in 12 runs under load: the answer, a's view of its partitions, whether
            # a still runs (its exit status, None while it runs) and b's answer
            detail=lambda: (
                first.get(f"/users/{user_on_a}"),
                first.get("/healthz"),
                owner_of,
                first.process.poll() if first.process else "not started",
                second.get(f"/users/{user_on_a}"),
            ),
        )
        # routed by the other worker; it knows the owner once its assignment map has arrived
        wait_for(
            lambda: second.get(f"/users/{user_on_a}")[1].get("user_id") == user_on_a,
            30,
            "the other worker to route the query",
        )

        first.kill()
        wait_for(
            lambda: set(second.get("/healthz")[1].get("partitions", [])) == {0, 1, 2, 3},
            60,
            "the survivor to own every partition",
        )
        enriched, failed = wait_for_outcomes(settings, len(delivered))
        assert not failed
        assert {e["photo_id"] for e in enriched} == {d.photo_id for d in delivered}
        # outputs are sent before tables change, and the survivor may still be re-running the
        # killed worker's unacknowledged batch: the tables converge, they are not instant
        wait_for(
            lambda: all(second.get(f"/users/{user}")[1].get("photos") == 8 for user in USERS),
            60,
            "the survivor's tables to count every photo",
        )


def one_table(tmp_path: Path, partitions: int = 2) -> tuple[Any, Any]:
    """A worker's kind of table (RocksDB, Darkroom's store) in an app that is not started."""
    app = DarkroomApp(
        "failover-store", store="rocksdb://", datadir=str(tmp_path), autodiscover=False
    )
    made = Table(app, name="things", default=None, beacon=app.tables.beacon, partitions=partitions)
    app.tables.add(made)
    return made, made.data


def changelog(table: Any, partition: int) -> TP:
    return TP(table.changelog_topic.get_topic_name(), partition)


def test_a_revoked_table_partition_held_elsewhere_opens_again_when_taken_back(
    tmp_path: Path,
) -> None:
    # Faust left a revoked partition's RocksDB to the garbage collector: a reference kept
    # anywhere kept its lock, and taking the partition back failed ("lock hold by current
    # process"), 30 retries, then the worker stopped
    table, store = one_table(tmp_path)
    store._db_for_partition(0).put(store._encode_key("k"), store._encode_value({"n": 1}))
    held = store._dbs[0]  # what a scan, a traceback or a cache would keep
    store.revoke_partitions(table, {changelog(table, 0)})
    store._db_for_partition(0)  # as assigning it does (which retried for 30 s, then stopped)
    assert store._dbs[0] is not held
    assert table.get("k") == {"n": 1}
    asyncio.run(store.stop())


def test_lookups_from_other_threads_survive_partitions_revoked_under_them(tmp_path: Path) -> None:
    # the pipeline's threads have no current event: a look-up tries every partition, while the
    # event loop revokes (and closes) partitions
    table, store = one_table(tmp_path, partitions=2)
    for partition in (0, 1):
        db = store._db_for_partition(partition)
        for i in range(200):
            db.put(store._encode_key(f"{partition}-{i}"), store._encode_value(i))
    errors: list[BaseException] = []
    missing: list[str] = []
    done = threading.Event()

    def look_up() -> None:
        while not done.is_set():
            for i in range(0, 200, 7):
                try:
                    if table.get(f"0-{i}") != i:  # partition 0 is never revoked
                        missing.append(f"0-{i}")
                    table.get(f"1-{i}")
                except BaseException as exc:  # what the pipeline would see
                    errors.append(exc)
                    return

    reader = threading.Thread(target=look_up)
    reader.start()
    try:
        for _ in range(150):
            store.revoke_partitions(table, {changelog(table, 1)})
            store._db_for_partition(1)
    finally:
        done.set()
        reader.join()
    assert not errors, errors[:3]
    assert not missing, missing[:3]
    asyncio.run(store.stop())
