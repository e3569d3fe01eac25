"""Worker tests: each test gets its own topics, consumer group, tables and blob root."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import Settings
from streams.models.repository import ModelRepository
from tests.worker.harness import for_test_workers


@pytest.fixture
def stream_settings(kafka: Settings, tmp_path: Path, repository: ModelRepository) -> Settings:
    """Settings for workers of this test (the models are built before any worker starts)."""
    return for_test_workers(kafka)


@pytest.fixture
def eos_settings(apache_kafka: Settings, tmp_path: Path, repository: ModelRepository) -> Settings:
    """Worker settings with exactly_once, on Apache Kafka (tansu has no transactions)."""
    return for_test_workers(apache_kafka, guarantee="exactly_once")


@pytest.fixture
def kafka_worker_settings(
    apache_kafka: Settings, tmp_path: Path, repository: ModelRepository
) -> Settings:
    """Worker settings on Apache Kafka only."""
    return for_test_workers(apache_kafka)
