"""Event contracts: the Avro schemas in schemas/ and the codecs that put them on the wire."""

from streams.contracts.codec import (
    Codec,
    ConfluentCodec,
    DecodedEvent,
    EncodeError,
    MalformedEventError,
    RegistryError,
    SingleObjectCodec,
    make_codec,
)
from streams.contracts.schemas import EventType, SchemaRepository, SchemaVersion

__all__ = [
    "Codec",
    "ConfluentCodec",
    "DecodedEvent",
    "EncodeError",
    "EventType",
    "MalformedEventError",
    "RegistryError",
    "SchemaRepository",
    "SchemaVersion",
    "SingleObjectCodec",
    "make_codec",
]
