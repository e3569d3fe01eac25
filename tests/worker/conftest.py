"""Worker tests: each test gets its own topics, consumer group, tables and blob root."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streams.config import Settings
from streams.models.repository import ModelRepository


@pytest.fixture
def stream_settings(kafka: Settings, tmp_path: Path, repository: ModelRepository) -> Settings:
    """Settings for workers of this test (the models are built before any worker starts)."""
    worker = kafka.worker.model_copy(
        update={"app_id": f"darkroom-test-{uuid.uuid4().hex[:8]}", "batch_wait_s": 0.1}
    )
    return kafka.model_copy(update={"worker": worker})
