"""`darkroom broker start|status|stop` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.broker import free_port
from tests.cli.runner import darkroom
from tests.kafka_required import require_kafka

pytestmark = pytest.mark.broker


def test_broker_commands(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "DARKROOM_BROKER_PORT": str(port),
        "DARKROOM_BROKER_STATE_DIR": str(tmp_path),
        "DARKROOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
    }
    try:
        assert darkroom("broker", "status", env=env).exit_code == 1
        started = darkroom("broker", "start", env=env)
        assert started.exit_code == 0, started.output
        assert f"started on 127.0.0.1:{port}" in started.stdout
        assert "photos.uploaded" in started.stdout and "4 partitions" in started.stdout
        again = darkroom("broker", "start", env=env)
        assert "already running" in again.stdout
        status = darkroom("broker", "status", env=env)
        assert status.exit_code == 0 and "answering Metadata" in status.stdout
    finally:
        stopped = darkroom("broker", "stop", env=env)
    assert "broker stopped" in stopped.stdout
    assert "no broker was running" in darkroom("broker", "stop", env=env).stdout


def test_kafka_broker_commands(tmp_path: Path) -> None:
    require_kafka()
    port = free_port()
    env = {
        "DARKROOM_BROKER_PORT": str(port),
        "DARKROOM_BROKER_STATE_DIR": str(tmp_path),
        "DARKROOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "DARKROOM_KAFKA_PROFILE": "standard",
    }
    try:
        started = darkroom("broker", "start", "--engine", "kafka", env=env)
        assert started.exit_code == 0, started.output
        assert f"Apache Kafka 4.4.0 (1 node) started on 127.0.0.1:{port}" in started.stdout
        assert "photos.uploaded" in started.stdout and "replication 1" in started.stdout
        assert "note:" not in started.stdout  # bootstrap and profile already match
        # stop and status find the engine in the state dir: no --engine needed
        status = darkroom("broker", "status", env=env)
        assert status.exit_code == 0, status.output
        assert "answering Metadata" in status.stdout
        assert f"node 1 on 127.0.0.1:{port}: pid" in status.stdout
        assert "already running" in darkroom("broker", "start", "--engine", "kafka", env=env).stdout
        tansu = darkroom("broker", "start", env=env)  # the other engine, same state dir
        assert tansu.exit_code == 1 and "stop it first" in tansu.stderr
    finally:
        stopped = darkroom("broker", "stop", env=env)
    assert "broker stopped" in stopped.stdout
    assert darkroom("broker", "status", env=env).exit_code == 1
    assert "no broker was running" in darkroom("broker", "stop", env=env).stdout
