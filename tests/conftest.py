"""Shared fixtures: one embedded broker per test session, topics of each test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings, TopicSettings, load_settings, settings_env
from streams.engine import Enricher
from streams.kafka.topics import ensure_topics, project_topics
from streams.models.build import build_model
from streams.models.repository import ModelRepository

# Tests are hermetic: no DARKROOM_* variable or darkroom.toml of the developer leaks in.
for _name in [n for n in os.environ if n.startswith("DARKROOM_")]:
    del os.environ[_name]
os.environ["DARKROOM_CONFIG"] = "/nonexistent/darkroom.toml"


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at an embedded broker started for this test session."""
    settings = private_broker_settings(load_settings(), tmp_path_factory.mktemp("broker"))
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        yield settings
    finally:
        broker.stop()


@pytest.fixture
def kafka(broker_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with this test's own topics (fresh, exact counts) and blob root."""
    suffix = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        uploaded=f"photos.uploaded.{suffix}",
        enriched=f"photos.enriched.{suffix}",
        failed=f"photos.failed.{suffix}",
        partitions=4,
    )
    blobs = broker_settings.blobs.model_copy(update={"root": tmp_path / "blobs"})
    settings = broker_settings.model_copy(update={"topics": topics, "blobs": blobs})
    ensure_topics(settings, project_topics(settings))
    return settings


@pytest.fixture
def kafka_env(kafka: Settings) -> dict[str, str]:
    """The environment a `darkroom` command needs to use the ``kafka`` settings."""
    return settings_env(kafka)


@pytest.fixture(scope="session")
def repository() -> ModelRepository:
    """The project's model repository, every model built (idempotent: a no-op when cached)."""
    settings = load_settings()
    repo = ModelRepository.from_settings(settings)
    for manifest in repo.manifests():
        build_model(repo, manifest)
    return repo


@pytest.fixture(scope="session")
def enricher(repository: ModelRepository) -> Iterator[Enricher]:
    """An engine with every bundled model."""
    engine = Enricher(load_settings().engine, repository)
    yield engine
    engine.close()
