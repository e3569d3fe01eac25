"""`darkroom broker start|status|stop` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.broker import free_port
from tests.cli.runner import darkroom

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
