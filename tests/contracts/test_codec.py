"""Codecs: round trips for every event type, and clear errors for bytes that are not events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.config import REPO_ROOT
from streams.contracts import (
    ConfluentCodec,
    EncodeError,
    EventType,
    MalformedEventError,
    SchemaRepository,
    SingleObjectCodec,
    make_codec,
)
from streams.contracts.events import new_upload
from tests.contracts.avro_strategies import records

REPOSITORY = SchemaRepository(REPO_ROOT / "schemas")
SINGLE = SingleObjectCodec(REPOSITORY)
CONFLUENT = ConfluentCodec(REPOSITORY, "mock://darkroom-tests")


def _events() -> st.SearchStrategy[tuple[EventType, dict[str, Any]]]:
    return st.one_of([st.tuples(st.just(t), records(REPOSITORY.latest(t).raw)) for t in EventType])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
def test_single_object_round_trip(event: tuple[EventType, dict[str, Any]]) -> None:
    event_type, record = event
    data = SINGLE.encode(event_type, record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == REPOSITORY.latest(event_type).fingerprint
    decoded = SINGLE.decode(data)
    assert decoded.event_type is event_type
    assert decoded.record == record


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
def test_confluent_round_trip(event: tuple[EventType, dict[str, Any]]) -> None:
    event_type, record = event
    data = CONFLUENT.encode(event_type, record)
    assert data[0] == 0
    decoded = CONFLUENT.decode(data)
    assert decoded.event_type is event_type
    assert decoded.record == record


def test_confluent_codec_also_reads_single_object_events() -> None:
    upload = new_upload(photo_id="p", user_id="u", content_type="image/png", byte_size=1, blob=b"x")
    assert CONFLUENT.decode(SINGLE.encode(EventType.PHOTO_UPLOADED, upload)).record == upload


def test_make_codec_picks_the_wire_format() -> None:
    assert isinstance(make_codec(REPOSITORY), SingleObjectCodec)
    assert isinstance(make_codec(REPOSITORY, "mock://x"), ConfluentCodec)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "starts with nothing"),
        (b"hello world, not avro", "not an Avro single-object event"),
        (b"\xc3\x01" + bytes(8) + b"\x02", "fingerprint 0000000000000000"),
        (b"\x00\x00\x00\x00\x07payload", "Confluent wire format"),
    ],
)
def test_malformed_bytes_are_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(MalformedEventError, match=message):
        SINGLE.decode(data)


def test_truncated_and_padded_bodies_are_refused() -> None:
    upload = new_upload(
        photo_id="p", user_id="u", content_type="image/png", byte_size=1, blob="file:///x"
    )
    data = SINGLE.encode(EventType.PHOTO_UPLOADED, upload)
    with pytest.raises(MalformedEventError, match="corrupt Avro body"):
        SINGLE.decode(data[:-8])
    with pytest.raises(MalformedEventError, match="trailing bytes"):
        SINGLE.decode(data + b"\x00\x00")


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    for codec in (SINGLE, CONFLUENT):
        try:
            event = codec.decode(data)
        except MalformedEventError as exc:
            assert str(exc)  # a reason a dead letter can carry
            continue
        # bytes that do decode are a whole event: it encodes again and reads back the same
        assert codec.decode(codec.encode(event.event_type, event.record)).record == event.record


def test_encode_error_names_the_field() -> None:
    upload = new_upload(photo_id="p", user_id="u", content_type="image/png", byte_size=1, blob=b"x")
    upload["byte_size"] = "twelve"
    for codec in (SINGLE, CONFLUENT):
        with pytest.raises(EncodeError, match="byte_size"):
            codec.encode(EventType.PHOTO_UPLOADED, upload)
