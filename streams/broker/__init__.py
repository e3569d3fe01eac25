"""The embedded Kafka-protocol broker (tansu) that the demo, the tests and local runs use."""

from streams.broker.embedded import (
    BrokerError,
    BrokerStatus,
    EmbeddedBroker,
    free_port,
    private_broker_settings,
)

__all__ = ["BrokerError", "BrokerStatus", "EmbeddedBroker", "free_port", "private_broker_settings"]
