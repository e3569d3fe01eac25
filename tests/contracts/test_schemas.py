"""The schema repository: layout, documentation, fingerprints, and the Python mirror of enums."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from streams.config import REPO_ROOT
from streams.contracts.schemas import (
    EventType,
    SchemaError,
    SchemaRepository,
    UnknownSchemaError,
)
from streams.errors import FailureReason

SCHEMAS = REPO_ROOT / "schemas"


def _rabin_reference(canonical: str) -> bytes:
    """CRC-64-AVRO straight from the Avro specification (independent of fastavro)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in canonical.encode("utf-8"):
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


@pytest.fixture(scope="module")
def repository() -> SchemaRepository:
    return SchemaRepository(SCHEMAS)


def test_every_event_type_has_versions_from_one(repository: SchemaRepository) -> None:
    for event_type in EventType:
        versions = repository.versions(event_type)
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        assert repository.latest(event_type) is versions[-1]
        assert versions[-1].full_name == f"darkroom.v1.{event_type.value}"


def test_every_top_level_field_is_documented(repository: SchemaRepository) -> None:
    for event_type in EventType:
        schema = repository.latest(event_type).raw
        assert schema.get("doc")
        undocumented = [f["name"] for f in schema["fields"] if not f.get("doc")]
        assert not undocumented, f"{event_type}: fields without doc: {undocumented}"


def test_fingerprint_matches_the_avro_specification(repository: SchemaRepository) -> None:
    for event_type in EventType:
        for version in repository.versions(event_type):
            assert version.fingerprint == _rabin_reference(version.canonical_form)
            assert repository.by_fingerprint(version.fingerprint) is version
    # a known vector from the Avro test suite: the fingerprint of "int"
    assert _rabin_reference('"int"') == (0x7275D51A3F395C8F).to_bytes(8, "little")


def test_unknown_fingerprint_is_a_clear_error(repository: SchemaRepository) -> None:
    with pytest.raises(UnknownSchemaError, match="fingerprint 0000000000000000"):
        repository.by_fingerprint(bytes(8))


def test_failure_reason_enum_mirrors_the_schema(repository: SchemaRepository) -> None:
    reason = next(
        f["type"]
        for f in repository.latest(EventType.PHOTO_FAILED).raw["fields"]
        if f["name"] == "reason"
    )
    assert reason["symbols"] == [r.value for r in FailureReason]
    assert reason["default"] == "UNKNOWN"


def _copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    return root


def test_gap_in_versions_is_refused(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    shutil.copy(root / "PhotoUploaded" / "1.avsc", root / "PhotoUploaded" / "3.avsc")
    with pytest.raises(SchemaError, match="without gaps"):
        SchemaRepository(root)


def test_record_name_must_match_folder(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    path = root / "PhotoFailed" / "1.avsc"
    raw = json.loads(path.read_text())
    raw["name"] = "Oops"
    path.write_text(json.dumps(raw))
    with pytest.raises(SchemaError, match="'Oops'"):
        SchemaRepository(root)


def test_missing_type_folder_is_refused(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    shutil.rmtree(root / "PhotoEnriched")
    with pytest.raises(SchemaError, match="no schema versions for PhotoEnriched"):
        SchemaRepository(root)
