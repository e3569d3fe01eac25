"""Which local broker to run, and settings for a broker of one's own (demo, tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from streams.broker import embedded, kafka
from streams.broker.embedded import EmbeddedBroker
from streams.broker.kafka import KafkaCluster
from streams.broker.process import free_port
from streams.config import BrokerEngine, BrokerSecurity, Settings

LocalBroker = EmbeddedBroker | KafkaCluster


def local_broker(settings: Settings, engine: BrokerEngine | None = None) -> LocalBroker:
    """The broker ``engine`` (default: ``broker.engine``) names, for these settings."""
    if (engine or settings.broker.engine) == "kafka":
        return KafkaCluster(settings)
    return EmbeddedBroker(settings)


def recorded_engines(state_dir: Path) -> list[BrokerEngine]:
    """The engines whose pid file is in ``state_dir`` (what `darkroom broker stop` stops)."""
    found: list[BrokerEngine] = []
    if (state_dir / kafka.PID_FILE).is_file():
        found.append("kafka")
    if (state_dir / embedded.PID_FILE).is_file():
        found.append("embedded")
    return found


def private_broker_settings(
    settings: Settings,
    state_dir: Path,
    *,
    engine: BrokerEngine | None = None,
    nodes: int | None = None,
    security: BrokerSecurity | None = None,
    users: list[str] | None = None,
) -> Settings:
    """Settings for a broker of one's own: a free port, its own state folder, the client
    profile of its engine, and ``kafka.bootstrap`` naming every node.

    For engine "kafka" the cluster is planned here (its other ports chosen and saved in
    ``state_dir``, see ``KafkaCluster.plan``), so the bootstrap is right before it starts; the
    project's topics get ``min(nodes, 3)`` replicas.
    """
    engine = engine or settings.broker.engine
    nodes = nodes or (settings.broker.nodes if engine == "kafka" else 1)
    if engine == "embedded" and nodes != 1:
        raise ValueError("the embedded broker (tansu) is a single node")
    port = free_port(settings.broker.host)
    broker = settings.broker.model_copy(
        update={
            "port": port,
            "state_dir": state_dir,
            "engine": engine,
            "nodes": nodes,
            "security": security or settings.broker.security,
            "users": settings.broker.users if users is None else users,
        }
    )
    own = settings.model_copy(update={"broker": broker})
    if engine == "kafka":
        cluster = KafkaCluster(own)
        cluster.plan()
        topics = settings.topics.model_copy(update={"replication": min(nodes, 3)})
        return with_bootstrap(own.model_copy(update={"topics": topics}), cluster.bootstrap)
    return with_bootstrap(own, f"{settings.broker.host}:{port}")


def with_bootstrap(settings: Settings, bootstrap: str) -> Settings:
    """``settings`` whose clients connect to ``bootstrap``, tuned for the engine it runs."""
    profile = "standard" if settings.broker.engine == "kafka" else "embedded"
    kafka_settings = settings.kafka.model_copy(update={"bootstrap": bootstrap, "profile": profile})
    return settings.model_copy(update={"kafka": kafka_settings})
