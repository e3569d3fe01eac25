"""Client profiles: the one place where broker-specific client tuning lives.

``standard`` suits Apache Kafka. ``embedded`` suits the tansu broker that the demo and the tests
run (see docs/brokers.md); each setting below says which of its quirks it works around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from streams.config import ClientProfileName

ConfigValue = str | int | float | bool


@dataclass(frozen=True)
class ClientProfile:
    """librdkafka settings layered on top of the defaults for each kind of client."""

    name: ClientProfileName
    producer: MappingProxyType[str, ConfigValue] = field(default_factory=lambda: _frozen({}))
    consumer: MappingProxyType[str, ConfigValue] = field(default_factory=lambda: _frozen({}))
    faust: MappingProxyType[str, ConfigValue] = field(default_factory=lambda: _frozen({}))
    fetch_max_wait_ms: int = 500  # the Faust worker's consumer (see streams/worker/transport.py)
    transactions: bool = True


def _frozen(values: dict[str, ConfigValue]) -> MappingProxyType[str, ConfigValue]:
    return MappingProxyType(values)


STANDARD: Final = ClientProfile(
    name="standard",
    producer=_frozen({"enable.idempotence": True, "linger.ms": 5, "compression.type": "lz4"}),
    consumer=_frozen({}),
    faust=_frozen(
        {
            # Faust's 60 s session timeout left a crashed worker's partitions idle for a
            # minute; 10 s (3 s heartbeats) moves them in seconds, and the worker's event loop
            # never blocks (all work runs in threads), so it does not miss heartbeats.
            "broker_session_timeout": 10.0,
            "broker_heartbeat_interval": 3.0,
        }
    ),
)

EMBEDDED: Final = ClientProfile(
    name="embedded",
    producer=_frozen(
        {
            # ListOffsets(latest) answers the last *batch's* base offset + 1, so watermarks are
            # only right when every batch holds one record.
            "batch.num.messages": 1,
            # No InitProducerId (no idempotence, no transactions): keep per-key order instead by
            # allowing one request in flight.
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
            "linger.ms": 0,
        }
    ),
    consumer=_frozen(
        {
            # A group join takes about half the session timeout on tansu: 6 s -> ready in 3 s.
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            # tansu holds every Fetch for the full max wait even when data is there.
            "fetch.wait.max.ms": 10,
        }
    ),
    faust=_frozen(
        {
            "broker_session_timeout": 6.0,
            "broker_heartbeat_interval": 1.0,
            # aiokafka's batch limit is in bytes: 1 puts every record in a batch of its own
            "producer_max_batch_size": 1,
        }
    ),
    # The worker's consumer polls tansu once per wait even when idle: at 10 ms an idle worker
    # and tansu burnt 29% and 50% of a core, at 50 ms 8% and 20% (on a 2-core machine that was
    # CPU the engine needed); a record reaches the agent at most 50 ms later.
    fetch_max_wait_ms=50,
    transactions=False,  # no InitProducerId: Faust's exactly_once cannot start
)

PROFILES: Final[dict[ClientProfileName, ClientProfile]] = {
    "standard": STANDARD,
    "embedded": EMBEDDED,
}


def get_profile(name: ClientProfileName) -> ClientProfile:
    """The profile called ``name``."""
    return PROFILES[name]
