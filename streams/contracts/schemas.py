"""The schema repository: every released version of every event schema, loaded from schemas/.

Layout: ``schemas/<EventType>/<n>.avsc``, one file per released version, never edited once
released. Versions of one type must stay FULL_TRANSITIVE compatible (every version reads data
written by every other), which is what lets old consumers read new events and replays read old
ones. The namespace (``darkroom.v1``) changes only for a deliberate breaking line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.errors import DarkroomError, SetupError


class EventType(StrEnum):
    """The events Darkroom reads and writes; the value is the Avro record name."""

    PHOTO_UPLOADED = "PhotoUploaded"
    PHOTO_ENRICHED = "PhotoEnriched"
    PHOTO_FAILED = "PhotoFailed"
    SHADOW_RESULT = "ShadowResult"  # a variant beside production (photos.shadow)
    PHOTO_DELETED = "PhotoDeleted"  # forget one photo (photos.uploaded, after its upload)
    USER_ERASED = "UserErased"  # forget a user (photos.uploaded)
    PHOTO_REMOVED = "PhotoRemoved"  # a photo or a user forgotten (photos.enriched)


# What each Darkroom topic carries. Requests to forget ride the uploads topic, keyed by user id
# like the uploads, so that each comes after the uploads it concerns on the same partition (a
# second topic would need the same partitioning and still give no order between the two).
UPLOADS_TOPIC_TYPES = frozenset(
    {EventType.PHOTO_UPLOADED, EventType.PHOTO_DELETED, EventType.USER_ERASED}
)
ENRICHED_TOPIC_TYPES = frozenset({EventType.PHOTO_ENRICHED, EventType.PHOTO_REMOVED})
FORGET_REQUESTS = frozenset({EventType.PHOTO_DELETED, EventType.USER_ERASED})


class SchemaError(SetupError):
    """The schema repository on disk is incomplete or inconsistent."""


class UnknownSchemaError(DarkroomError, LookupError):
    """A fingerprint or registry schema that this repository does not know."""


def rabin_fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO fingerprint of a canonical schema, as the 8 little-endian bytes on the wire."""
    return bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))  # hex of the LE bytes


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of one event schema."""

    event_type: EventType
    version: int
    path: Path
    raw: dict[str, Any]

    @cached_property
    def parsed(self) -> Any:
        """The schema as fastavro's parsed form (parsed once, reused for every record)."""
        return parse_schema(self.raw)

    @cached_property
    def canonical_form(self) -> str:
        """The Avro Parsing Canonical Form (what the fingerprint is taken of)."""
        return str(to_parsing_canonical_form(self.raw))

    @cached_property
    def fingerprint(self) -> bytes:
        """8-byte CRC-64-AVRO fingerprint, as written in the single-object header."""
        return rabin_fingerprint(self.canonical_form)

    @property
    def full_name(self) -> str:
        """Fully qualified record name, e.g. darkroom.v1.PhotoUploaded."""
        return f"{self.raw['namespace']}.{self.raw['name']}"

    def __str__(self) -> str:
        return f"{self.event_type.value} v{self.version}"


class SchemaRepository:
    """All versions of all event schemas, looked up by type, version or fingerprint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._versions: dict[EventType, list[SchemaVersion]] = {
            event_type: _load_versions(root, event_type) for event_type in EventType
        }
        self._by_fingerprint = {
            v.fingerprint: v for versions in self._versions.values() for v in versions
        }

    def versions(self, event_type: EventType) -> list[SchemaVersion]:
        """Every released version of a type, oldest first."""
        return list(self._versions[event_type])

    def latest(self, event_type: EventType) -> SchemaVersion:
        """The newest version: what this code writes and what it reads everything as."""
        return self._versions[event_type][-1]

    def by_fingerprint(self, fp: bytes) -> SchemaVersion:
        """The version whose fingerprint is ``fp``; UnknownSchemaError if none."""
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownSchemaError(
                f"no schema in {self.root} has fingerprint {fp.hex()}: the event was written "
                "with a schema this code does not have (a newer release?)"
            ) from None

    def by_full_name(self, full_name: str) -> EventType:
        """The event type a fully qualified record name belongs to."""
        for event_type in EventType:
            if self.latest(event_type).full_name == full_name:
                return event_type
        raise UnknownSchemaError(f"{full_name} is not a Darkroom event type")


def _load_versions(root: Path, event_type: EventType) -> list[SchemaVersion]:
    folder = root / event_type.value
    files = sorted(folder.glob("*.avsc"), key=lambda p: _version_number(p))
    if not files:
        raise SchemaError(f"no schema versions for {event_type.value} in {folder}")
    versions = []
    for expected, path in enumerate(files, start=1):
        number = _version_number(path)
        if number != expected:
            raise SchemaError(f"{folder}: versions must be 1..n without gaps, found {path.name}")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("name") != event_type.value:
            raise SchemaError(f"{path}: record name {raw.get('name')!r} != {event_type.value!r}")
        versions.append(SchemaVersion(event_type, number, path, raw))
    return versions


def _version_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise SchemaError(f"{path}: schema files are named <version>.avsc, e.g. 1.avsc") from None
