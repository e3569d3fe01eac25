"""Codecs: event dicts <-> bytes on the wire.

Two wire formats, told apart by their first byte, so any reader can decode both:

* Avro single-object encoding (the default, no server needed): ``C3 01`` + the writer schema's
  8-byte CRC-64-AVRO fingerprint (little-endian) + the Avro binary body. The fingerprint is
  looked up in schemas/, so any released version decodes, resolved to the latest version.
* Confluent wire format, when a Schema Registry URL is configured: ``00`` + a 4-byte schema id +
  the Avro body, written by confluent-kafka's AvroSerializer (subjects named after the record,
  e.g. ``darkroom.v1.PhotoUploaded``, so a copy into another topic stays valid).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate

from streams.config import Settings
from streams.contracts.schemas import EventType, SchemaRepository, UnknownSchemaError
from streams.errors import OperationError, UnreachableError, UsageError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0
_HEADER_LEN = len(SINGLE_OBJECT_MAGIC) + 8


class MalformedEventError(UsageError, ValueError):
    """Bytes that are not a Darkroom event this code can read (the reason for a dead letter)."""


class EncodeError(OperationError, ValueError):
    """A record that does not fit its schema (a bug in the code that built it)."""


class RegistryError(UnreachableError, RuntimeError):
    """The Schema Registry could not be reached or refused a schema."""


@dataclass(frozen=True)
class DecodedEvent:
    """An event read off the wire, already resolved to the latest schema of its type."""

    event_type: EventType
    writer_version: str  # e.g. "v1" (single-object) or "registry id 7" (Confluent)
    record: dict[str, Any]


class Codec(Protocol):
    """What the rest of Darkroom needs from a wire format."""

    def encode(self, event_type: EventType, record: Mapping[str, Any]) -> bytes:
        """Serialise a record of ``event_type`` with the latest schema."""
        ...

    def decode(self, data: bytes) -> DecodedEvent:
        """Deserialise any Darkroom event; MalformedEventError if it is not one."""
        ...


class SingleObjectCodec:
    """Avro single-object encoding resolved against the schemas/ folder (no server)."""

    def __init__(self, repository: SchemaRepository) -> None:
        self.repository = repository

    def encode(self, event_type: EventType, record: Mapping[str, Any]) -> bytes:
        """Header (magic + fingerprint of the latest schema) + Avro body."""
        schema = self.repository.latest(event_type)
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MAGIC)
        buffer.write(schema.fingerprint)
        _write_body(buffer, event_type, schema.parsed, record)
        return buffer.getvalue()

    def decode(self, data: bytes) -> DecodedEvent:
        """Find the writer schema by fingerprint, read the body as the latest schema."""
        if data[:1] == bytes([CONFLUENT_MAGIC]) and len(data) > 5:
            raise MalformedEventError(
                "event is in the Confluent wire format (schema registry id "
                f"{int.from_bytes(data[1:5], 'big')}); set DARKROOM_KAFKA_SCHEMA_REGISTRY_URL"
            )
        if len(data) < _HEADER_LEN or not data.startswith(SINGLE_OBJECT_MAGIC):
            raise MalformedEventError(
                f"not an Avro single-object event: starts with {data[:4].hex() or 'nothing'} "
                f"({len(data)} bytes), expected c301 + 8-byte fingerprint"
            )
        try:
            writer = self.repository.by_fingerprint(data[2:_HEADER_LEN])
        except UnknownSchemaError as exc:
            raise MalformedEventError(str(exc)) from None
        reader = self.repository.latest(writer.event_type)
        record = _read_body(
            data[_HEADER_LEN:], writer.parsed, None if reader is writer else reader.parsed
        )
        return DecodedEvent(writer.event_type, f"v{writer.version}", record)


class ConfluentCodec:
    """Confluent wire format through a Schema Registry (confluent-kafka's serializers)."""

    def __init__(
        self,
        repository: SchemaRepository,
        registry_url: str,
        basic_auth: str | None = None,
        tls: dict[str, str] | None = None,
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        conf = {"url": registry_url, **(tls or {})}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self.repository = repository
        self._client = SchemaRegistryClient.new_client(conf)  # mock:// = in-process registry
        self._context = SerializationContext("darkroom", MessageField.VALUE)
        self._fallback = SingleObjectCodec(repository)
        serializer_conf = {
            "auto.register.schemas": True,
            "subject.name.strategy": _record_subject,
        }
        self._serializers = {}
        self._deserializers = {}
        for event_type in EventType:
            schema_str = self._schema_str(event_type)
            self._serializers[event_type] = AvroSerializer(
                self._client, schema_str, conf=serializer_conf
            )
            self._deserializers[event_type] = AvroDeserializer(self._client, schema_str)

    def _schema_str(self, event_type: EventType) -> str:
        return self.repository.latest(event_type).path.read_text(encoding="utf-8")

    def encode(self, event_type: EventType, record: Mapping[str, Any]) -> bytes:
        """Register (once) and write with the latest schema of ``event_type``."""
        try:
            data: bytes = self._serializers[event_type](dict(record), self._context)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _explain(
                event_type, self.repository.latest(event_type).parsed, record, exc
            ) from exc
        except Exception as exc:
            raise RegistryError(f"schema registry failed for {event_type.value}: {exc}") from exc
        return data

    def decode(self, data: bytes) -> DecodedEvent:
        """Read the writer schema id, find its type, resolve to the latest local schema."""
        if data.startswith(SINGLE_OBJECT_MAGIC):
            return self._fallback.decode(data)
        if len(data) < 5 or data[0] != CONFLUENT_MAGIC:
            raise MalformedEventError(
                f"not a Confluent-framed event: starts with {data[:4].hex() or 'nothing'}"
            )
        schema_id = int.from_bytes(data[1:5], "big")
        try:
            registered = self._client.get_schema(schema_id)
            raw = json.loads(registered.schema_str or "{}")
            event_type = self.repository.by_full_name(f"{raw['namespace']}.{raw['name']}")
            record = self._deserializers[event_type](data, self._context)
        except UnknownSchemaError as exc:
            raise MalformedEventError(str(exc)) from None
        except Exception as exc:
            raise MalformedEventError(
                f"cannot decode registry schema id {schema_id}: {exc}"
            ) from exc
        return DecodedEvent(event_type, f"registry id {schema_id}", record)


# The registry client takes TLS settings under librdkafka's names: the same files as Kafka's
REGISTRY_TLS_KEYS = ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location")


def make_codec(
    repository: SchemaRepository,
    registry_url: str | None = None,
    basic_auth: str | None = None,
    tls: dict[str, str] | None = None,
) -> Codec:
    """The configured codec: Confluent when a registry URL is set, single-object otherwise."""
    if registry_url:
        return ConfluentCodec(repository, registry_url, basic_auth, tls)
    return SingleObjectCodec(repository)


def codec_from_settings(settings: Settings, repository: SchemaRepository | None = None) -> Codec:
    """The codec ``settings`` configure (the schemas/ folder is read unless given)."""
    auth = settings.kafka.schema_registry_auth
    return make_codec(
        repository or SchemaRepository(settings.paths.schemas),
        settings.kafka.schema_registry_url,
        auth.get_secret_value() if auth else None,
        # one security configuration: an https registry trusts the CA (and presents the client
        # certificate) that kafka.librdkafka names for Kafka
        {k: v for k, v in settings.kafka.librdkafka.items() if k in REGISTRY_TLS_KEYS},
    )


def _record_subject(_ctx: Any, record_name: str | None) -> str | None:
    """Subject = fully qualified record name (RecordNameStrategy)."""
    return record_name


def _write_body(
    buffer: io.BytesIO, event_type: EventType, parsed: Any, record: Mapping[str, Any]
) -> None:
    try:
        schemaless_writer(buffer, parsed, record)
    except Exception as exc:
        raise _explain(event_type, parsed, record, exc) from exc


def _read_body(body: bytes, writer: Any, reader: Any) -> dict[str, Any]:
    stream = io.BytesIO(body)
    try:
        record = schemaless_reader(stream, writer, reader)
    except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
        raise MalformedEventError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
    if not isinstance(record, dict):
        raise MalformedEventError("corrupt Avro body: not a record")
    if stream.tell() != len(body):
        raise MalformedEventError(
            f"corrupt Avro body: {len(body) - stream.tell()} trailing bytes after the record"
        )
    return record


def _explain(
    event_type: EventType, parsed: Any, record: Mapping[str, Any], exc: Exception
) -> EncodeError:
    """fastavro's writer errors are terse; its validator names the offending field."""
    try:
        validate(record, parsed, raise_errors=True)
    except Exception as detailed:
        return EncodeError(f"{event_type.value} does not fit its schema: {detailed}")
    return EncodeError(f"{event_type.value} could not be encoded: {exc}")
