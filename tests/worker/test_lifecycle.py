"""A worker's start and stop, on the real broker: ready means ready; a stop has a deadline;
Faust's own pages stay off; `darkroom-force: 1` re-enriches a photo that is done."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings, load_settings
from streams.contracts import headers
from streams.kafka.clients import make_producer
from streams.kafka.topics import ensure_topics, project_topics
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo
from tests.worker.harness import (
    WorkerProcess,
    for_test_workers,
    running,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import upload

pytestmark = pytest.mark.broker


def test_healthz_says_ok_only_when_assigned_recovered_and_loaded(
    stream_settings: Settings, tmp_path: Path
) -> None:
    worker = WorkerProcess(stream_settings, tmp_path, "w").start()
    seen: list[tuple[int, dict[str, Any]]] = []

    def healthy() -> bool:
        answer = worker.get("/healthz")
        seen.append(answer)
        return answer[0] == 200

    try:
        wait_for(healthy, 90, "/healthz to say ok")
        status, body = seen[-1]
        assert body["status"] == "ok" and body["partitions"] == [0, 1, 2, 3]
        assert body["models"] and body["waiting_for"] == []
        for status, body in seen[:-1]:  # before: nothing answering, or 503 saying why
            assert status in (0, 503), (status, body)
            if status == 503:
                assert body["status"] == "starting" and body["waiting_for"]
        # Faust's own pages would serve every table to whoever reaches the port
        for page in ("/router/", "/table/photo_state/", "/graph/", "/stats/"):
            assert worker.get(page)[0] == 404, page
    finally:
        worker.stop()


def test_force_header_re_enriches_a_photo_that_is_done(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    value = upload(settings, "cat", encode_jpeg(load_photo("chelsea"), quality=60))
    producer = make_producer(settings)
    topic = settings.topics.uploaded
    with running(WorkerProcess(settings, tmp_path, "w")):
        producer.produce(topic, key=b"mallory", value=value)
        producer.flush(10)
        wait_for_outcomes(settings, 1)
        producer.produce(topic, key=b"mallory", value=value, headers=[(headers.FORCE, b"1")])
        producer.flush(10)
        enriched, failed = wait_for_outcomes(settings, 2)
    assert [e["photo_id"] for e in enriched] == ["cat", "cat"] and not failed
    assert enriched[0]["enriched_at"] < enriched[1]["enriched_at"]


def test_a_stop_that_cannot_finish_ends_at_its_deadline(
    tmp_path: Path, repository: ModelRepository
) -> None:
    # a broker of its own, stopped under the worker: the worker cannot commit or leave cleanly
    own = private_broker_settings(for_test_workers(load_settings()), tmp_path / "broker")
    broker = EmbeddedBroker(own)
    broker.start()
    worker_settings = own.worker.model_copy(update={"shutdown_timeout_s": 5.0})
    settings = own.model_copy(update={"worker": worker_settings})
    worker = WorkerProcess(settings, tmp_path, "w")
    try:
        ensure_topics(settings, project_topics(settings))
        worker.start().wait_ready()
        broker.stop()
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(5.0 + 15.0)  # the deadline, plus Python's own exit
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker ignored its stop deadline:\n{worker.tail_log()}")
        log = worker.log.read_text(errors="replace")
        # either it managed a clean stop in time, or it says what it abandoned
        assert code == 0 or (code == 1 and "abandoning" in log), (code, worker.tail_log())
    finally:
        worker.kill()
        broker.stop()
