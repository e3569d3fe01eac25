"""Apache Kafka under the worker: a leader killed mid-run on 3 nodes, a 1-node broker restarted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.broker import KafkaCluster, local_broker, private_broker_settings
from streams.config import Settings, load_settings
from streams.kafka.clients import make_admin
from tests.conftest import own_topics
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    count,
    for_test_workers,
    outcomes,
    read_topic,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder, publish_report

pytestmark = pytest.mark.broker


def leader_of_busiest(settings: Settings) -> int:
    """The node that leads the uploads partition holding the most uploads."""
    topic = settings.topics.uploaded
    partitions = make_admin(settings).list_topics(topic, timeout=10).topics[topic].partitions
    counts = Counter(e["_partition"] for e in read_topic(settings, topic))
    busiest = max(partitions, key=lambda p: counts.get(p, 0))
    return int(partitions[busiest].leader)


@pytest.mark.timeout(600)
def test_worker_goes_on_when_the_leader_of_a_busy_partition_dies(
    kafka_trio: KafkaCluster, tmp_path: Path, repository: object
) -> None:
    kafka_trio.start()
    settings = for_test_workers(own_topics(kafka_trio.settings, tmp_path))
    assert settings.topics.replication == 3
    write_photos(tmp_path / "first", {f"u{i}": 6 for i in range(6)}, size=480)
    first = publish_report(settings, tmp_path / "first")
    assert not first.failed
    worker = WorkerProcess(settings, tmp_path, "w")
    with running(worker):
        wait_for(lambda: count(settings, settings.topics.enriched) >= 6, 120, "some outputs")
        victim = leader_of_busiest(settings)
        kafka_trio.kill_node(victim)  # kill -9, mid-run
        write_photos(tmp_path / "during", {f"v{i}": 3 for i in range(4)}, size=480)
        during = publish_report(settings, tmp_path / "during")
        # publish accounts for every photo: delivered (acks=all, 2 in-sync replicas) or not
        assert len(during.delivered) + len(during.failed) == 12
        kafka_trio.start_node(victim)
        delivered = {d.photo_id for d in [*first.delivered, *during.delivered]}
        wait_for_outcomes(settings, len(delivered), timeout_s=300)
        wait_consumed(settings, timeout_s=120)
        assert worker.process is not None and worker.process.poll() is None, "worker restarted"
        enriched, failed = outcomes(settings)
        assert {e["photo_id"] for e in enriched} | {f["photo_id"] for f in failed} == delivered
    log = worker.log.read_text(errors="replace")
    assert "batch not completed" not in log


@pytest.mark.timeout(600)
def test_restarted_kafka_keeps_tables_and_skips_done_photos(
    tmp_path: Path, repository: object
) -> None:
    base = private_broker_settings(load_settings(), tmp_path / "broker", engine="kafka")
    broker = local_broker(base)
    broker.start()
    try:
        settings = for_test_workers(own_topics(base, tmp_path))
        write_photos(tmp_path / "photos", {"ana": 4, "ben": 3})
        publish_folder(settings, tmp_path / "photos")
        worker = WorkerProcess(settings, tmp_path, "w")

        def stats() -> dict[str, object] | None:
            answers = {user: worker.get(f"/users/{user}") for user in ("ana", "ben")}
            counted = {u: a[1].get("photos") for u, a in answers.items() if a[0] == 200}
            return answers if counted == {"ana": 4, "ben": 3} else None

        with running(worker):
            wait_consumed(settings)
            before = wait_for(stats, 60, "the tables to count every photo")

        broker.stop()
        broker.start()  # same state dir: the data is on disk
        publish_folder(settings, tmp_path / "photos")  # the same photos again
        with running(worker):
            wait_consumed(settings)
            after = wait_for(stats, 60, "the restored tables")
            metrics = worker.metrics()
        assert after == before
        assert 'darkroom_photos_total{outcome="skipped"} 7.0' in metrics
        enriched, failed = outcomes(settings)
        assert len(enriched) == 7 and not failed  # nothing enriched twice
    finally:
        broker.stop()


@pytest.mark.timeout(600)
def test_healthz_is_not_ready_while_the_broker_is_gone(tmp_path: Path, repository: object) -> None:
    base = private_broker_settings(load_settings(), tmp_path / "broker", engine="kafka")
    broker = KafkaCluster(base)
    broker.start()
    try:
        settings = for_test_workers(own_topics(base, tmp_path))
        with running(WorkerProcess(settings, tmp_path, "w")) as (worker,):
            broker.kill_node(1)

            def not_ready() -> dict[str, Any] | None:
                status, body = worker.get("/healthz")
                return body if status == 503 else None

            body = wait_for(not_ready, 60, "/healthz to say 503 without a broker")
            assert any("group coordinator" in why for why in body["waiting_for"]), body
            broker.start_node(1)
            wait_for(lambda: worker.get("/healthz")[0] == 200, 120, "/healthz ok again")
    finally:
        broker.stop()
