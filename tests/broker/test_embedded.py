"""The embedded broker's lifecycle: start, readiness, status, and a stop that kills only its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker import BrokerError, EmbeddedBroker, private_broker_settings
from streams.config import Settings, load_settings
from streams.kafka.clients import BrokerUnreachableError, probe
from streams.kafka.topics import ensure_topics, project_topics

pytestmark = pytest.mark.broker


@pytest.fixture
def own_broker(tmp_path: Path) -> EmbeddedBroker:
    broker = EmbeddedBroker(private_broker_settings(load_settings(), tmp_path / "state"))
    yield broker
    broker.stop()


def test_start_status_stop(own_broker: EmbeddedBroker) -> None:
    assert not own_broker.status().running
    started = own_broker.start()
    assert started.running and started.pid
    assert own_broker.pid_file.is_file() and own_broker.log_file.is_file()
    status = own_broker.status()
    assert status.running and status.detail == "answering Metadata"
    assert own_broker.start().pid == started.pid  # idempotent: no second process
    assert own_broker.stop() is True
    assert not own_broker.status().running
    assert not own_broker.pid_file.exists()
    with pytest.raises(BrokerUnreachableError, match="did not answer"):
        probe(own_broker.settings, timeout_s=1.0)
    assert own_broker.stop() is False


def test_creates_project_topics_with_partitions(own_broker: EmbeddedBroker) -> None:
    own_broker.start()
    settings = own_broker.settings
    created = ensure_topics(settings, project_topics(settings))
    assert sorted(created) == sorted(
        ["photos.uploaded", "photos.enriched", "photos.failed", "photos.shadow"]
    )
    topics = probe(settings).topics
    assert all(len(topics[name].partitions) == 4 for name in created)
    assert ensure_topics(settings, project_topics(settings)) == []  # idempotent


def test_stale_pid_file_never_kills_a_stranger(own_broker: EmbeddedBroker) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        own_broker.state_dir.mkdir(parents=True)
        own_broker.pid_file.write_text(json.dumps({"pid": stranger.pid, "started_at": 0}))
        assert not own_broker.status().running
        assert own_broker.stop() is False
        assert stranger.poll() is None  # still alive
        assert own_broker.start().pid != stranger.pid  # and a stale file does not block start
    finally:
        stranger.kill()
        stranger.wait()


def test_port_in_use_is_a_clear_error(own_broker: EmbeddedBroker) -> None:
    with socket.socket() as squatter:
        squatter.bind((own_broker.host, own_broker.port))
        squatter.listen()
        with pytest.raises(BrokerError, match="already in use"):
            own_broker.start()
    assert not own_broker.pid_file.exists()


def test_a_broker_that_dies_during_start_reports_its_log(
    own_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'cannot open storage: boom'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr("streams.broker.embedded.tansu_binary", lambda: fake)
    with pytest.raises(BrokerError, match=r"exited with code 3(.|\n)*boom"):
        own_broker.start()
    assert not own_broker.pid_file.exists()


def test_session_broker_is_up(broker_settings: Settings) -> None:
    assert probe(broker_settings, timeout_s=2.0).brokers
    assert os.environ.get("DARKROOM_KAFKA_BOOTSTRAP") is None  # tests are hermetic


def test_stop_and_status_follow_the_pid_file_not_the_current_port(
    own_broker: EmbeddedBroker,
) -> None:
    started = own_broker.start()
    other_port = own_broker.settings.broker.model_copy(update={"port": own_broker.port + 1})
    elsewhere = EmbeddedBroker(own_broker.settings.model_copy(update={"broker": other_port}))
    status = elsewhere.status()
    assert status.running and status.pid == started.pid
    assert status.bootstrap == own_broker.bootstrap
    assert elsewhere.stop() is True
    assert not own_broker.status().running
