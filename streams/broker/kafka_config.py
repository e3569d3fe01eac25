"""What a local Apache Kafka node is told: its server.properties, its log4j2 config, its ports.

The broker-wide properties are constants here and nowhere else: docker-compose.yml repeats them
as ``KAFKA_*`` variables and tests/test_compose.py checks that both say the same.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from streams.broker.process import BrokerError, free_ports, write_json

# Every node of every local cluster, whatever its size.
BROKER_PROPERTIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Darkroom creates its topics itself (streams/kafka/topics.py, Faust for its changelogs):
        # a typo in a topic name must fail, not create a topic with the wrong layout.
        "auto.create.topics.enable": "false",
        # Ten times the default kafka.max_message_bytes (1,000,000) plus framing: raising that
        # setting a little must not start failing on the broker's side first.
        "message.max.bytes": "10485760",
        # A consumer group (the Faust worker, tests) starts at once, not after 3 s.
        "group.initial.rebalance.delay.ms": "0",
        # Compacted topics (Faust's changelogs) really get compacted; the cleaner checks every
        # second instead of every 15 s, and its dedupe buffer fits a small heap (the default
        # 128 MiB alone would not fit a 128 MB node).
        "log.cleaner.enable": "true",
        "log.cleaner.backoff.ms": "1000",
        "log.cleaner.dedupe.buffer.size": "16777216",
        # Kafka's internal topics with 8 partitions, not 50: on a small machine the first
        # consumer group (and the first transaction) waits for every one of them to be created
        # and replicated, and 8 is plenty for a local cluster.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        # `stop` ends every node at once, and a controlled shutdown (leaders moved away first)
        # waits for the controller quorum that the other nodes are leaving at the same moment:
        # the last node then waited for a majority that was gone until it was SIGKILLed. With
        # every node stopping there is nowhere to move leaders to anyway; logs are still
        # flushed and closed cleanly.
        "controlled.shutdown.enable": "false",
        # A killed node is fenced (and its partitions get new leaders) after 6 s, not 9 s.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
    }
)

LISTENERS: Final = "PLAINTEXT"
CONTROLLER: Final = "CONTROLLER"


def replication_properties(nodes: int) -> dict[str, str]:
    """Replication defaults for a cluster of ``nodes``: up to 3 copies, 2 in sync when 3."""
    factor = min(nodes, 3)
    min_isr = "2" if factor >= 3 else "1"
    return {
        "default.replication.factor": str(factor),
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": min_isr,
    }


@dataclass(frozen=True)
class ClusterLayout:
    """What must not change across restarts: the cluster id and the ports of the quorum.

    Node 1's client port is ``broker.port`` from the settings at each start; the others are
    chosen free once, when the cluster is planned, and kept in ``cluster.json``.
    """

    cluster_id: str
    nodes: int
    broker_ports: dict[int, int]  # nodes 2..N
    controller_ports: dict[int, int]  # nodes 1..N
    security: str = "plaintext"  # a sasl_ssl cluster's admin credentials are made at format

    @classmethod
    def create(
        cls, nodes: int, host: str, first_port: int, security: str = "plaintext"
    ) -> ClusterLayout:
        """A new layout with free ports (none equal to ``first_port``)."""
        ports = free_ports(2 * nodes - 1, host, exclude=[first_port])
        controllers = {n: ports[n - 1] for n in range(1, nodes + 1)}
        brokers = {n: ports[nodes + n - 2] for n in range(2, nodes + 1)}
        return cls(new_cluster_id(), nodes, brokers, controllers, security)

    @classmethod
    def load(cls, path: Path) -> ClusterLayout | None:
        """The layout saved at ``path``, or None."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                cluster_id=str(raw["cluster_id"]),
                nodes=int(raw["nodes"]),
                broker_ports={int(k): int(v) for k, v in raw["broker_ports"].items()},
                controller_ports={int(k): int(v) for k, v in raw["controller_ports"].items()},
                security=str(raw.get("security", "plaintext")),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BrokerError(f"unreadable cluster layout {path}: {exc!r}") from exc

    def save(self, path: Path) -> None:
        """Write the layout (atomically)."""
        write_json(
            path,
            {
                "cluster_id": self.cluster_id,
                "nodes": self.nodes,
                "broker_ports": self.broker_ports,
                "controller_ports": self.controller_ports,
                "security": self.security,
            },
        )

    def broker_port(self, node_id: int, first_port: int) -> int:
        """The client port of ``node_id``."""
        return first_port if node_id == 1 else self.broker_ports[node_id]

    def voters(self, host: str) -> str:
        """controller.quorum.voters: every node is a voter."""
        return ",".join(f"{n}@{host}:{p}" for n, p in sorted(self.controller_ports.items()))


def new_cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage random-uuid` makes it, without starting a JVM:
    16 random bytes, base64url without padding, never starting with '-' (Kafka's own rule, so
    the id cannot be mistaken for a command-line option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def node_properties(
    node_id: int,
    layout: ClusterLayout,
    host: str,
    first_port: int,
    data_dir: Path,
    listener: str = LISTENERS,
    security: Mapping[str, str] = MappingProxyType({}),
) -> dict[str, str]:
    """Every property of one node: its identity and listeners, the shared ones, then those of
    its security mode (``listener``: PLAINTEXT, SSL or SASL_SSL; streams/broker/local_security)."""
    port = layout.broker_port(node_id, first_port)
    controller_port = layout.controller_ports[node_id]
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": layout.voters(host),
        "listeners": f"{listener}://{host}:{port},{CONTROLLER}://{host}:{controller_port}",
        "advertised.listeners": f"{listener}://{host}:{port}",
        "controller.listener.names": CONTROLLER,
        "listener.security.protocol.map": f"{listener}:{listener},{CONTROLLER}:PLAINTEXT",
        "inter.broker.listener.name": listener,
        "log.dirs": str(data_dir),
        **replication_properties(layout.nodes),
        **BROKER_PROPERTIES,
        **security,
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """server.properties text (values here never need escaping: no '\\', ':' only in URLs)."""
    lines = [
        "# written by darkroom at every start (streams/broker/kafka_config.py): edits are lost"
    ]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


# One config for every node: each JVM names its own folder in -Dkafka.logs.dir (as Kafka's own
# scripts do). INFO to a file that rolls at 10 MB, three kept: a long-running local cluster must
# not fill the disk; the request log stays at WARN (at INFO it logs every request). log4j2's own
# shutdown hook is off: it ran beside Kafka's and cut the log off in the middle of the shutdown.
LOG4J2_XML: Final = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="server" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="10 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
  </Loggers>
</Configuration>
"""
