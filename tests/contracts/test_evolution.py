"""Schema evolution: every released version reads data written by every other (FULL_TRANSITIVE).

FULL_TRANSITIVE is the rule for all Darkroom events: new consumers replay old events, and old
consumers keep reading while producers upgrade. The checks below would catch a new version that
breaks it (see the deliberately broken schemas at the end).
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.config import REPO_ROOT
from streams.contracts import EventType, SchemaRepository, SingleObjectCodec
from tests.contracts.avro_strategies import records

REPOSITORY = SchemaRepository(REPO_ROOT / "schemas")


def read_as(writer: dict[str, Any], reader: dict[str, Any], record: dict[str, Any]) -> Any:
    """Write ``record`` with ``writer`` and read it back resolved to ``reader``."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(writer), record)
    buffer.seek(0)
    return schemaless_reader(buffer, parse_schema(writer), parse_schema(reader))


def assert_compatible(writer: dict[str, Any], reader: dict[str, Any], data: st.DataObject) -> None:
    """Records of ``writer`` read as ``reader`` keep every field both schemas have."""
    record = data.draw(records(writer))
    resolved = read_as(writer, reader, record)
    shared = {f["name"] for f in writer["fields"]} & {f["name"] for f in reader["fields"]}
    reader_types = {f["name"]: f["type"] for f in reader["fields"]}
    names = named_types(reader)
    expected = {k: as_reader_sees(reader_types[k], record[k], names) for k in shared}
    assert {k: resolved[k] for k in shared} == expected


def named_types(schema: Any, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type defined in ``schema``, by name (a later use names it only)."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            found[schema["name"]] = schema
        for child in (*[f["type"] for f in schema.get("fields", [])], schema.get("items")):
            if child is not None:
                named_types(child, found)
        if isinstance(schema.get("values"), (dict, list)):
            named_types(schema["values"], found)
    return found


def as_reader_sees(reader_type: Any, value: Any, names: dict[str, Any]) -> Any:
    """What the reader gets for ``value``. An enum symbol the reader does not know reads as
    the reader's default (Avro 1.9+): how a consumer of PhotoFailed v1 meets a reason added in
    v2. A nested record gets the reader's fields, defaults for those the writer lacked: how a
    consumer of PhotoEnriched v2 reads a v1 ``duplicate_of``."""
    reader_type = (
        names.get(reader_type, reader_type) if isinstance(reader_type, str) else reader_type
    )
    if isinstance(reader_type, list):
        if value is None:
            return None
        kinds = [names.get(b, b) if isinstance(b, str) else b for b in reader_type]
        wanted = (
            "record" if isinstance(value, dict) else "array" if isinstance(value, list) else None
        )
        fits = [b for b in kinds if isinstance(b, dict) and b.get("type") == wanted]
        if wanted == "record":  # a union of records (blob: BlobRef | InlineBlob): by its fields
            fits.sort(key=lambda b: len(set(value) - {f["name"] for f in b["fields"]}))
        branch = fits[0] if fits else None
        return value if branch is None else as_reader_sees(branch, value, names)
    if not isinstance(reader_type, dict):
        return value
    kind = reader_type.get("type")
    if kind == "enum" and value not in reader_type["symbols"]:
        return reader_type["default"]
    if kind == "record" and isinstance(value, dict):
        return {
            f["name"]: as_reader_sees(f["type"], value[f["name"]], names)
            if f["name"] in value
            else f.get("default")
            for f in reader_type["fields"]
        }
    if kind == "array" and isinstance(value, list):
        return [as_reader_sees(reader_type["items"], item, names) for item in value]
    return value


PAIRS = [
    (event_type, old, new)
    for event_type in EventType
    for old, new in itertools.product(REPOSITORY.versions(event_type), repeat=2)
]


@pytest.mark.parametrize(("event_type", "writer", "reader"), PAIRS, ids=lambda p: str(p))
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_version_reads_every_other(
    event_type: EventType, writer: Any, reader: Any, data: st.DataObject
) -> None:
    assert_compatible(writer.raw, reader.raw, data)


def _with_field(base: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    schema = json.loads(json.dumps(base))
    schema["fields"].append(field)
    return schema


UPLOADED_V1 = REPOSITORY.latest(EventType.PHOTO_UPLOADED).raw
GOOD_V2 = _with_field(UPLOADED_V1, {"name": "album", "type": ["null", "string"], "default": None})
BAD_V2 = _with_field(UPLOADED_V1, {"name": "album", "type": "string"})  # no default


@settings(max_examples=10)
@given(data=st.data())
def test_an_optional_field_with_default_is_compatible_both_ways(data: st.DataObject) -> None:
    assert_compatible(UPLOADED_V1, GOOD_V2, data)
    assert_compatible(GOOD_V2, UPLOADED_V1, data)


@settings(max_examples=5)
@given(data=st.data())
def test_a_required_field_without_default_is_caught(data: st.DataObject) -> None:
    with pytest.raises(Exception, match="album"):
        assert_compatible(UPLOADED_V1, BAD_V2, data)


def test_codec_reads_old_events_as_the_new_version(tmp_path: Path) -> None:
    """Release a v2 next to v1: events written with v1 decode, with the new field's default."""
    root = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", root)
    old_codec = SingleObjectCodec(SchemaRepository(root))
    (root / "PhotoUploaded" / "2.avsc").write_text(json.dumps(GOOD_V2))
    new_codec = SingleObjectCodec(SchemaRepository(root))
    record = {
        "event_id": "e",
        "photo_id": "p",
        "user_id": "u",
        "uploaded_at": 0,
        "content_type": "image/png",
        "byte_size": 1,
        "blob": {"data": b"x"},
        "content_sha256": None,
        "filename": None,
        "client_metadata": None,
        "trace_id": None,
    }
    decoded = new_codec.decode(old_codec.encode(EventType.PHOTO_UPLOADED, record))
    assert decoded.writer_version == "v1"
    assert decoded.record["album"] is None
    assert decoded.record["photo_id"] == "p"
