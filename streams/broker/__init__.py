"""The local brokers that the demo, the tests and local runs use: tansu (``EmbeddedBroker``,
in memory, starts in 0.1 s) or Apache Kafka in KRaft mode (``KafkaCluster``, 1-5 nodes, data on
disk, jars from Maven Central); ``local_broker`` picks one by ``broker.engine``."""

from streams.broker.embedded import EmbeddedBroker
from streams.broker.factory import (
    LocalBroker,
    local_broker,
    private_broker_settings,
    recorded_engines,
    with_bootstrap,
)
from streams.broker.jars import KafkaSetupError
from streams.broker.kafka import KafkaCluster
from streams.broker.process import BrokerError, BrokerStatus, NodeStatus, free_port

__all__ = [
    "BrokerError",
    "BrokerStatus",
    "EmbeddedBroker",
    "KafkaCluster",
    "KafkaSetupError",
    "LocalBroker",
    "NodeStatus",
    "free_port",
    "local_broker",
    "private_broker_settings",
    "recorded_engines",
    "with_bootstrap",
]
