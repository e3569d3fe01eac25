"""Shared fixtures: one broker per engine per test session, topics of each test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import (
    KafkaCluster,
    LocalBroker,
    local_broker,
    private_broker_settings,
    with_bootstrap,
)
from streams.config import BrokerEngine, BrokerSecurity, Settings, load_settings, settings_env
from streams.engine import Enricher
from streams.engine.build import build as build_model
from streams.kafka.topics import ensure_topics, project_topics
from streams.models.repository import ModelRepository
from tests.blobs.s3server import ACCESS_KEY, SECRET_KEY, LocalS3
from tests.kafka_required import require_kafka

ENGINES: tuple[BrokerEngine, ...] = ("embedded", "kafka")

# Tests are hermetic: no DARKROOM_* variable or darkroom.toml of the developer leaks in.
for _name in [n for n in os.environ if n.startswith("DARKROOM_")]:
    del os.environ[_name]
os.environ["DARKROOM_CONFIG"] = "/nonexistent/darkroom.toml"
# The shipped shadow experiments (models/*_int8) would run beside every test's models and cost
# every worker test their inference: tests of variants turn them on (tests/variants.py).
os.environ["DARKROOM_ENGINE_VARIANTS"] = "none"
# ...nor AWS credentials, profiles or an instance role: S3 tests use the local server's keys.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)


class Brokers:
    """One broker per engine for the whole test session, started when a test first needs it
    (under pytest-xdist, as ``make test`` runs, each worker is a session with brokers of its
    own).

    Broker tests are parametrised by engine (``broker_settings``), and pytest runs all the tests
    of one engine before the other's; a broker stays up until the session ends, so each engine
    starts once (a JVM start costs seconds).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, tuple[LocalBroker, Settings]] = {}

    def settings(self, engine: BrokerEngine) -> Settings:
        if engine not in self.running:
            if engine == "kafka":
                require_kafka()
            settings = private_broker_settings(load_settings(), self.folder / engine, engine=engine)
            broker = local_broker(settings)
            broker.start()
            self.running[engine] = (broker, with_bootstrap(settings, broker.bootstrap))
        return self.running[engine][1]

    def stop(self) -> None:
        for broker, _settings in self.running.values():
            broker.stop()


@pytest.fixture(scope="session")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    """The session's brokers (see Brokers)."""
    started = Brokers(tmp_path_factory.mktemp("brokers"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session", params=ENGINES)
def broker_settings(request: pytest.FixtureRequest, brokers: Brokers) -> Settings:
    """Settings pointing at this session's broker of each engine: a test that uses it runs once
    on tansu and once on Apache Kafka."""
    engine: BrokerEngine = request.param
    return brokers.settings(engine)


@pytest.fixture(scope="session")
def apache_kafka_settings(brokers: Brokers) -> Settings:
    """The session's Apache Kafka only (for what tansu cannot do: transactions, durability)."""
    return brokers.settings("kafka")


@pytest.fixture(scope="session")
def kafka_trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-node Apache Kafka cluster (replication 3, min.insync.replicas 2) for failover tests;
    started by the first test that uses it."""
    require_kafka()
    state = tmp_path_factory.mktemp("kafka3") / "state"
    cluster = KafkaCluster(private_broker_settings(load_settings(), state, engine="kafka", nodes=3))
    try:
        yield cluster
    finally:
        cluster.stop()


# Users of the secured cluster: one per role under test, and some with only part of a role
SECURED_USERS = [
    "worker",
    "worker_eos",
    "publisher",
    "reader",
    "nobody",
    "describer",
    "no_group",
    "no_txn",
    "exporter",
    "replayer",
    "consumer",
]


def secured_cluster(
    factory: pytest.TempPathFactory, security: BrokerSecurity, users: list[str]
) -> Iterator[KafkaCluster]:
    """A one-node Apache Kafka in ``security`` mode with ``users``, stopped at the end."""
    require_kafka()
    state = factory.mktemp(f"kafka-{security}") / "state"
    settings = private_broker_settings(
        load_settings(), state, engine="kafka", security=security, users=users
    )
    cluster = KafkaCluster(settings)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """An Apache Kafka with a SASL_SSL listener (SCRAM-SHA-256/512, PLAIN), the
    StandardAuthorizer and the users above; started by the first test that uses it."""
    yield from secured_cluster(tmp_path_factory, "sasl_ssl", SECURED_USERS)


@pytest.fixture
def secured_admin(secured_kafka: KafkaCluster, tmp_path: Path) -> Settings:
    """The secured cluster's super user, with topics of the test's own."""
    return own_topics(secured_kafka.client_settings(), tmp_path)


def own_topics(base: Settings, tmp_path: Path) -> Settings:
    """``base`` with topics of the test's own (fresh, exact counts) and blob root."""
    suffix = uuid.uuid4().hex[:8]
    topics = base.topics.model_copy(
        update={
            "uploaded": f"photos.uploaded.{suffix}",
            "enriched": f"photos.enriched.{suffix}",
            "failed": f"photos.failed.{suffix}",
            "shadow": f"photos.shadow.{suffix}",
            "partitions": 4,
        }
    )
    blobs = base.blobs.model_copy(update={"root": tmp_path / "blobs"})
    settings = base.model_copy(update={"topics": topics, "blobs": blobs})
    ensure_topics(settings, project_topics(settings))
    return settings


@pytest.fixture
def kafka(broker_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with this test's own topics (fresh, exact counts) and blob root."""
    return own_topics(broker_settings, tmp_path)


@pytest.fixture
def apache_kafka(apache_kafka_settings: Settings, tmp_path: Path) -> Settings:
    """Like ``kafka``, on Apache Kafka only."""
    return own_topics(apache_kafka_settings, tmp_path)


@pytest.fixture
def kafka_env(kafka: Settings) -> dict[str, str]:
    """The environment a `darkroom` command needs to use the ``kafka`` settings."""
    return settings_env(kafka)


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """The session's S3-compatible server on 127.0.0.1 (started by the first test using it)."""
    server = LocalS3(tmp_path_factory.mktemp("s3") / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(local_s3: LocalS3) -> Settings:
    """Settings serving a fresh bucket of this test's own on the local server."""
    bucket = f"photos-{uuid.uuid4().hex[:12]}"
    local_s3.create_bucket(bucket)
    return s3_settings(load_settings(), local_s3.endpoint, [bucket])


# A silent store's tests wait seconds, not minutes: 2 attempts of a 1 s read timeout. Tests that
# expect photos to come out keep the defaults (a busy 2-core machine can starve moto for 1 s).
SILENT_STORE = {"s3_read_timeout_s": 1.0, "s3_max_attempts": 2}


def s3_settings(base: Settings, endpoint: str, buckets: list[str], **blobs: object) -> Settings:
    """``base`` serving ``buckets`` at ``endpoint`` (and ``blobs`` settings)."""
    update = {"s3_endpoint": endpoint, "s3_buckets": buckets, "s3_region": "us-east-1", **blobs}
    return base.model_copy(update={"blobs": base.blobs.model_copy(update=update)})


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
