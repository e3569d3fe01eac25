"""`darkroom broker start|stop|status`: a local broker, tansu or Apache Kafka (KRaft)."""

from __future__ import annotations

import time

import typer

from streams.broker import (
    BrokerError,
    BrokerStatus,
    KafkaCluster,
    LocalBroker,
    local_broker,
    recorded_engines,
    with_bootstrap,
)
from streams.cli.common import ExitCode, console, state
from streams.config import BrokerEngine, Settings
from streams.kafka.topics import ensure_topics, project_topics

app = typer.Typer(
    help="Run a local broker on 127.0.0.1: tansu (embedded, in memory, the default) or Apache "
    "Kafka in KRaft mode (--engine kafka: 1-5 nodes, data on disk, jars fetched from Maven "
    "Central on first use; needs Java 17+ and Maven).",
    no_args_is_help=True,
)

ENGINE_HELP = "embedded = tansu; kafka = Apache Kafka (default: broker.engine)"
NODES_HELP = "Kafka nodes (engine kafka; default: broker.nodes); 3 = a cluster that survives a kill"


def _settings(settings: Settings, engine: BrokerEngine | None, nodes: int | None) -> Settings:
    update: dict[str, object] = {}
    if engine is not None:
        update["engine"] = engine
    if nodes is not None:
        update["nodes"] = nodes
    return settings.model_copy(update={"broker": settings.broker.model_copy(update=update)})


def _recorded(settings: Settings) -> dict[BrokerEngine, LocalBroker]:
    """The brokers this state dir's pid files name; else the one the settings choose."""
    engines = recorded_engines(settings.broker.state_dir) or [settings.broker.engine]
    return {engine: local_broker(settings, engine) for engine in engines}


def _topic_settings(settings: Settings, status: BrokerStatus) -> Settings:
    """Settings to create the topics on the broker just started: its own bootstrap, and for a
    Kafka cluster at least min(nodes, 3) replicas (never more than nodes)."""
    own = with_bootstrap(settings, status.bootstrap)
    if settings.broker.engine != "kafka":
        return own
    nodes = settings.broker.nodes
    replication = min(max(settings.topics.replication, min(nodes, 3)), nodes)
    return own.model_copy(
        update={"topics": settings.topics.model_copy(update={"replication": replication})}
    )


@app.command()
def start(
    ctx: typer.Context,
    engine: BrokerEngine | None = typer.Option(None, "--engine", help=ENGINE_HELP),
    nodes: int | None = typer.Option(None, "--nodes", min=1, max=5, help=NODES_HELP),
) -> None:
    """Start the broker (if not running) and create the project's topics."""
    settings = _settings(state(ctx).settings, engine, nodes)
    chosen = settings.broker.engine
    for recorded, other in _recorded(settings).items():
        if recorded != chosen and other.status().running:
            raise BrokerError(
                f"a {recorded} broker from {settings.broker.state_dir} is running; stop it "
                "first (`darkroom broker stop`) or use another state dir "
                "(DARKROOM_BROKER_STATE_DIR)"
            )
    broker: LocalBroker = (
        KafkaCluster(settings, progress=lambda message: console.print(message))
        if chosen == "kafka"
        else local_broker(settings)
    )
    status = broker.start()
    topic_settings = _topic_settings(settings, status)
    created = ensure_topics(topic_settings, project_topics(topic_settings))
    verb = "started" if status.detail == "started" else "already running"
    what = "broker" if chosen == "embedded" else f"Apache Kafka {settings.broker.kafka_version}"
    if status.nodes:
        what += f" ({len(status.nodes)} node{'s' if len(status.nodes) > 1 else ''})"
    console.print(
        f"{what} {verb} on [bold]{status.bootstrap}[/] (pid {status.pid}); log: {status.log_file}"
    )
    if created:
        t = topic_settings.topics
        console.print(
            f"created topics: {', '.join(created)} ({t.partitions} partitions each, "
            f"replication {t.replication})"
        )
    _notes(settings, status, topic_settings)


def _notes(settings: Settings, status: BrokerStatus, topic_settings: Settings) -> None:
    """What the user's other commands need to use this broker."""
    if settings.kafka.bootstrap != status.bootstrap:
        console.print(
            f"[yellow]note:[/] DARKROOM_KAFKA_BOOTSTRAP is {settings.kafka.bootstrap}; "
            f"set it to {status.bootstrap} to use this broker"
        )
    if settings.broker.engine == "kafka" and settings.kafka.profile != "standard":
        console.print(
            "[yellow]note:[/] set DARKROOM_KAFKA_PROFILE=standard (client tuning for Apache Kafka)"
        )
    if topic_settings.topics.replication != settings.topics.replication:
        console.print(
            f"[yellow]note:[/] set DARKROOM_TOPICS_REPLICATION={topic_settings.topics.replication}"
            " so the worker's own topics are replicated too (the cluster requires 2 in-sync "
            "replicas for every acknowledged write)"
        )


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the broker that `darkroom broker start` started in this state dir (only that)."""
    stopped = [broker.stop() for broker in _recorded(state(ctx).settings).values()]
    console.print("broker stopped" if any(stopped) else "no broker was running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the broker runs and answers, per node for Kafka; exit 1 if it does not."""
    brokers = list(_recorded(state(ctx).settings).values())
    current = next((s for s in (b.status() for b in brokers) if s.running), None)
    if current is None:
        current = brokers[0].status()
        console.print(f"broker on {current.bootstrap}: {current.detail}")
        raise typer.Exit(int(ExitCode.FAILED))
    uptime = time.time() - (current.started_at or time.time())
    console.print(
        f"broker on [bold]{current.bootstrap}[/]: running, pid {current.pid}, "
        f"up {uptime:.0f} s, {current.detail}; log: {current.log_file}"
    )
    for node in current.nodes:
        pid = f"pid {node.pid}" if node.pid else "no process"
        console.print(f"  node {node.node_id} on {node.bootstrap}: {pid}, {node.detail}")
