"""`darkroom tail`: tables, JSON, limits, and bytes that are not events."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import Settings
from streams.kafka.clients import make_producer
from tests.cli.runner import darkroom, json_lines
from tests.photos import write_photos

pytestmark = pytest.mark.broker


def _publish(tmp_path: Path, env: dict[str, str], users: dict[str, int]) -> None:
    write_photos(tmp_path / "p", users)
    assert darkroom("publish", str(tmp_path / "p"), env=env).exit_code == 0


def test_table_output_has_a_header_and_a_row_per_event(
    tmp_path: Path, kafka_env: dict[str, str]
) -> None:
    _publish(tmp_path, kafka_env, {"amy": 2})
    result = darkroom(
        "tail",
        kafka_env["DARKROOM_TOPICS_UPLOADED"],
        "--from-beginning",
        "--max",
        "2",
        env=kafka_env,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["where", "user", "photo", "uploaded"]
    assert len(lines) == 3 and all("amy" in line and "jpeg" in line for line in lines[1:])
    assert "2 event(s)" in result.stderr


def test_max_stops_early_and_timeout_stops_when_idle(
    tmp_path: Path, kafka_env: dict[str, str]
) -> None:
    _publish(tmp_path, kafka_env, {"a": 3})
    topic = kafka_env["DARKROOM_TOPICS_UPLOADED"]
    limited = darkroom("tail", topic, "--from-beginning", "--json", "--max", "2", env=kafka_env)
    assert len(json_lines(limited.stdout)) == 2
    idle = darkroom("tail", topic, "--json", "--timeout", "1", env=kafka_env)  # from the end
    assert idle.exit_code == 0 and json_lines(idle.stdout) == []


def test_undecodable_messages_are_shown_not_fatal(
    kafka: Settings, kafka_env: dict[str, str]
) -> None:
    producer = make_producer(kafka)
    producer.produce(kafka.topics.failed, value=b"definitely not avro", key=b"k")
    producer.flush(10)
    result = darkroom("tail", kafka.topics.failed, "--from-beginning", "--max", "1", env=kafka_env)
    assert result.exit_code == 0
    assert "undecodable" in result.stdout and "1 undecodable" in result.stderr
    as_json = darkroom(
        "tail", kafka.topics.failed, "--from-beginning", "--max", "1", "--json", env=kafka_env
    )
    (line,) = json_lines(as_json.stdout)
    assert line["type"] is None and "not an Avro single-object event" in line["error"]


def test_unknown_topic_is_exit_2(kafka_env: dict[str, str]) -> None:
    result = darkroom("tail", "no.such.topic", "--timeout", "1", env=kafka_env)
    assert result.exit_code == 2
    assert "'no.such.topic' does not exist" in result.stderr
