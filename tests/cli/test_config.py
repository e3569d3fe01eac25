"""`darkroom config`: effective values, their sources, and masked secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.runner import darkroom


def _config(env: dict[str, str], *args: str) -> dict[str, dict[str, object]]:
    result = darkroom(*args, "config", "--json", env=env)
    assert result.exit_code == 0, result.output
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_defaults_file_and_env_sources(tmp_path: Path) -> None:
    file = tmp_path / "darkroom.toml"
    file.write_text('[topics]\npartitions = 8\n[kafka]\nbootstrap = "file:1"\n')
    env = {"DARKROOM_CONFIG": str(file), "DARKROOM_KAFKA_BOOTSTRAP": "env:2"}
    config = _config(env)
    assert config["kafka.bootstrap"] == {"value": "env:2", "source": "env"}
    assert config["topics.partitions"] == {"value": 8, "source": "file"}
    assert config["topics.uploaded"] == {"value": "photos.uploaded", "source": "default"}


def test_config_option_beats_nothing_and_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARKROOM_CONFIG", "/nonexistent/darkroom.toml")  # restored afterwards
    file = tmp_path / "other.toml"
    file.write_text("[broker]\nport = 19999\n")
    assert _config({}, "--config", str(file))["broker.port"]["value"] == 19999


def test_secrets_are_masked() -> None:
    env = {
        "DARKROOM_KAFKA_SCHEMA_REGISTRY_AUTH": "me:hunter2",
        "DARKROOM_KAFKA_LIBRDKAFKA": '{"sasl.password": "hunter2", "security.protocol": "SSL"}',
    }
    result = darkroom("config", env=env)
    assert "hunter2" not in result.stdout
    config = _config(env)
    assert config["kafka.schema_registry_auth"]["value"] == "********"
    assert config["kafka.librdkafka"]["value"] == {
        "sasl.password": "********",
        "security.protocol": "SSL",
    }


def test_invalid_configuration_is_exit_2() -> None:
    result = darkroom("config", env={"DARKROOM_TOPICS_PARTITIONS": "zero"})
    assert result.exit_code == 2
    assert "invalid configuration" in result.stderr and "partitions" in result.stderr


def test_the_api_token_files_path_is_shown_never_its_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "api-tokens"
    tokens.write_text("hunter2-but-long-enough-123\n")
    env = {"DARKROOM_WORKER_API_TOKEN_FILE": str(tokens)}
    for output in (
        darkroom("config", env=env).stdout,
        darkroom("config", "--json", env=env).stdout,
    ):
        assert "hunter2" not in output
    assert _config(env)["worker.api_token_file"]["value"] == str(tokens)


def test_kafka_secrets_are_masked_and_secret_files_shown_as_paths(tmp_path: Path) -> None:
    password = tmp_path / "kafka-password"
    password.write_text("hunter2-kafka\n")
    env = {
        "DARKROOM_KAFKA_LIBRDKAFKA": '{"sasl.username": "worker", "ssl.key.password": "pw-in-env"}',
        "DARKROOM_KAFKA_SECRET_FILES": json.dumps({"sasl.password": str(password)}),
    }
    for output in (
        darkroom("config", env=env).stdout,
        darkroom("config", "--json", env=env).stdout,
    ):
        assert "hunter2-kafka" not in output and "pw-in-env" not in output
    shown = _config(env)
    assert shown["kafka.secret_files"]["value"] == {"sasl.password": str(password)}
    assert shown["kafka.librdkafka"]["value"]["sasl.username"] == "worker"
