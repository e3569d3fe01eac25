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
from streams.config import BrokerEngine, BrokerSecurity, Settings
from streams.kafka.topics import ensure_topics, project_topics

app = typer.Typer(
    help="Run a local broker on 127.0.0.1: tansu (embedded, in memory, the default) or Apache "
    "Kafka in KRaft mode (--engine kafka: 1-5 nodes, data on disk, jars fetched from Maven "
    "Central on first use; needs Java 17+ and Maven).",
    no_args_is_help=True,
)

ENGINE_HELP = "embedded = tansu; kafka = Apache Kafka (default: broker.engine)"
NODES_HELP = "Kafka nodes (engine kafka; default: broker.nodes); 3 = a cluster that survives a kill"


SECURITY_HELP = (
    "engine kafka: sasl_ssl (SCRAM-SHA-256/512, PLAIN over TLS) or ssl (mutual TLS), ACLs "
    "enforced (default: broker.security, plaintext)"
)


def _settings(
    settings: Settings,
    engine: BrokerEngine | None,
    nodes: int | None,
    security: BrokerSecurity | None = None,
) -> Settings:
    update: dict[str, object] = {}
    if engine is not None:
        update["engine"] = engine
    if nodes is not None:
        update["nodes"] = nodes
    if security is not None:
        update["security"] = security
    return settings.model_copy(update={"broker": settings.broker.model_copy(update=update)})


def _recorded(settings: Settings) -> dict[BrokerEngine, LocalBroker]:
    """The brokers this state dir's pid files name; else the one the settings choose."""
    engines = recorded_engines(settings.broker.state_dir) or [settings.broker.engine]
    return {engine: local_broker(settings, engine) for engine in engines}


def _topic_settings(settings: Settings, broker: LocalBroker, status: BrokerStatus) -> Settings:
    """Settings to create the topics on the broker just started: its own bootstrap (and its
    super user when secured), and for a Kafka cluster at least min(nodes, 3) replicas (never
    more than nodes)."""
    if not isinstance(broker, KafkaCluster):
        return with_bootstrap(settings, status.bootstrap)
    own = broker.client_settings()
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
    security: BrokerSecurity | None = typer.Option(None, "--security", help=SECURITY_HELP),
) -> None:
    """Start the broker (if not running) and create the project's topics."""
    settings = _settings(state(ctx).settings, engine, nodes, security)
    if settings.broker.security != "plaintext" and settings.broker.engine != "kafka":
        raise BrokerError("--security needs --engine kafka (tansu has no TLS or SASL)")
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
    topic_settings = _topic_settings(settings, broker, status)
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
    if isinstance(broker, KafkaCluster) and broker.security.mode != "plaintext":
        user = next((u for u in broker.security.users if u != "admin"), "admin")
        console.print(
            f"security: {broker.security.mode}, ACLs enforced, super user 'admin'; users: "
            f"{', '.join(broker.security.users)}. Client settings for '{user}' (darkroom.toml; "
            f"`darkroom broker client-config --user NAME` for another):"
        )
        console.print(client_toml(broker, user), highlight=False, markup=False)


def client_toml(cluster: KafkaCluster, user: str, mechanism: str = "SCRAM-SHA-512") -> str:
    """The [kafka] settings that connect to ``cluster`` as ``user``, as TOML (no secret: the
    password stays in its file)."""
    settings = cluster.client_settings(user, mechanism).kafka
    lines = ["[kafka]", f'bootstrap = "{settings.bootstrap}"', 'profile = "standard"']
    lines += ["", "[kafka.librdkafka]"]
    lines += [f'"{k}" = "{v}"' for k, v in settings.librdkafka.items()]
    if settings.secret_files:
        lines += ["", "[kafka.secret_files]"]
        lines += [f'"{k}" = "{v}"' for k, v in settings.secret_files.items()]
    return "\n".join(lines)


@app.command("client-config")
def client_config(
    ctx: typer.Context,
    user: str = typer.Option("admin", "--user", help="A user of the secured local Kafka"),
    mechanism: str = typer.Option(
        "SCRAM-SHA-512", "--mechanism", help="SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (sasl_ssl)"
    ),
) -> None:
    """Print the [kafka] settings (TOML) that connect to the local Kafka as USER."""
    settings = state(ctx).settings
    cluster = KafkaCluster(settings)
    recorded = cluster.recorded_security()
    if recorded is None:
        raise BrokerError(f"no Kafka cluster in {settings.broker.state_dir}")
    cluster = KafkaCluster(_settings(settings, "kafka", None, recorded))
    if user not in cluster.security.users:
        raise BrokerError(
            f"no user {user!r} on this cluster (its users: {', '.join(cluster.security.users)}; "
            "add one to DARKROOM_BROKER_USERS and start it again)"
        )
    typer.echo(client_toml(cluster, user, mechanism))


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
