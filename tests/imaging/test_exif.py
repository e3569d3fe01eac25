"""Tests for EXIF fact extraction via exifread."""

from __future__ import annotations

import io
import struct
from typing import Any

import piexif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from streams.imaging.exif import ExifFacts, read_exif
from tests.imaging.conftest import encode, load_bgr

_JPEG = encode(load_bgr("chelsea"), ".jpg")


def _dms(value: float) -> tuple[tuple[int, int], ...]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10_000)
    return ((degrees, 1), (minutes, 1), (seconds, 10_000))


def _with_exif(exif: dict[str, Any], jpeg: bytes = _JPEG) -> bytes:
    out = io.BytesIO()
    piexif.insert(piexif.dump(exif), jpeg, out)
    return out.getvalue()


def _app1(tiff: bytes) -> bytes:
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


FULL = {
    "0th": {
        piexif.ImageIFD.Make: b"Canon",
        piexif.ImageIFD.Model: b"Canon EOS R5\x00",
        piexif.ImageIFD.Orientation: 6,
    },
    "Exif": {
        piexif.ExifIFD.DateTimeOriginal: b"2023:07:14 18:30:05",
        piexif.ExifIFD.OffsetTimeOriginal: b"+10:00",
        piexif.ExifIFD.LensModel: b"RF24-105mm F4 L IS USM",
    },
    "GPS": {
        piexif.GPSIFD.GPSLatitudeRef: b"S",
        piexif.GPSIFD.GPSLatitude: _dms(33.8568),
        piexif.GPSIFD.GPSLongitudeRef: b"E",
        piexif.GPSIFD.GPSLongitude: _dms(151.2153),
        piexif.GPSIFD.GPSAltitudeRef: 1,
        piexif.GPSIFD.GPSAltitude: (4250, 100),
    },
}


def test_full_facts() -> None:
    assert read_exif(_with_exif(FULL)) == ExifFacts(
        taken_at="2023-07-14T18:30:05+10:00",
        make="Canon",
        model="Canon EOS R5",
        lens_model="RF24-105mm F4 L IS USM",
        orientation=6,
        latitude=-33.8568,
        longitude=151.2153,
        altitude=-42.5,
    )


def test_north_west_naive_time_above_sea() -> None:
    facts = read_exif(
        _with_exif(
            {
                "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2001:02:03 04:05:06"},
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"N",
                    piexif.GPSIFD.GPSLatitude: _dms(40.6892),
                    piexif.GPSIFD.GPSLongitudeRef: b"W",
                    piexif.GPSIFD.GPSLongitude: _dms(74.0445),
                    piexif.GPSIFD.GPSAltitudeRef: 0,
                    piexif.GPSIFD.GPSAltitude: (93, 1),
                },
            }
        )
    )
    assert facts is not None
    assert facts.taken_at == "2001-02-03T04:05:06"
    assert (facts.latitude, facts.longitude, facts.altitude) == (40.6892, -74.0445, 93.0)
    assert facts.make is None
    assert facts.orientation is None


def test_digitized_fallback() -> None:
    facts = read_exif(
        _with_exif({"Exif": {piexif.ExifIFD.DateTimeDigitized: b"2010:10:10 10:10:10"}})
    )
    assert facts is not None
    assert facts.taken_at == "2010-10-10T10:10:10"


def test_no_exif_is_none() -> None:
    assert read_exif(_JPEG) is None
    assert read_exif(encode(load_bgr("chelsea"), ".png")) is None
    assert read_exif(b"") is None
    assert read_exif(b"not an image at all") is None


def test_only_irrelevant_tags_is_none() -> None:
    assert read_exif(_with_exif({"0th": {piexif.ImageIFD.Software: b"GIMP"}})) is None


def test_junk_values_give_partial_facts() -> None:
    data = _with_exif(
        {
            "0th": {piexif.ImageIFD.Make: b"  \x00", piexif.ImageIFD.Model: b"X100V"},
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: b"0000:00:00 00:00:00",
                piexif.ExifIFD.OffsetTimeOriginal: b"junk",
            },
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((91, 1), (0, 1), (0, 1)),  # > 90
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((10, 0), (0, 1), (0, 1)),  # zero denominator
                piexif.GPSIFD.GPSAltitude: (5, 0),
            },
        }
    )
    assert read_exif(data) == ExifFacts(model="X100V")


def test_bad_offset_is_dropped_and_bad_ref_rejected() -> None:
    facts = read_exif(
        _with_exif(
            {
                "0th": {piexif.ImageIFD.Make: b"Nikon"},
                "Exif": {
                    piexif.ExifIFD.DateTimeOriginal: b"2023:01:01 00:00:00",
                    piexif.ExifIFD.OffsetTimeOriginal: b"+25:00",
                },
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"X",
                    piexif.GPSIFD.GPSLatitude: _dms(10.0),
                },
            }
        )
    )
    assert facts == ExifFacts(taken_at="2023-01-01T00:00:00", make="Nikon")


def test_exif_after_large_icc_segment() -> None:
    """exifread's own JPEG scan misses APP1 after a 20 KB APP2; ours does not."""
    tiff = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Sony"}})[6:]
    icc = b"ICC_PROFILE\x00\x01\x01" + bytes(20_000)
    app2 = b"\xff\xe2" + struct.pack(">H", len(icc) + 2) + icc
    data = _JPEG[:2] + app2 + _app1(tiff) + _JPEG[2:]
    assert read_exif(data) == ExifFacts(make="Sony")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_other_containers(fmt: str) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Sony", piexif.ImageIFD.Orientation: 3}})
    buf = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buf, fmt, exif=exif)
    assert read_exif(buf.getvalue()) == ExifFacts(make="Sony", orientation=3)


def test_quadratic_ifd_attack_never_reaches_exifread(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 GPS pointers to an IFD declaring 65535 entries: ~8 s in raw exifread."""
    n_ptr = 50
    sub = 8 + 2 + 12 * n_ptr + 4
    tiff = b"II*\x00" + struct.pack("<IH", 8, n_ptr)
    tiff += struct.pack("<HHII", 0x8825, 4, 1, sub) * n_ptr + struct.pack("<IH", 0, 65535)

    calls: list[object] = []  # read_exif swallows exifread's errors, so count the calls
    monkeypatch.setattr(
        "streams.imaging.exif.exifread.process_file",
        lambda *args, **kwargs: calls.append(args) or {},
    )
    assert read_exif(_JPEG[:2] + _app1(tiff) + _JPEG[2:]) is None
    assert calls == []  # refused by the IFD budget before exifread ran


@settings(max_examples=300, deadline=500)
@given(st.binary(max_size=300))
def test_fuzz_app1_payload_never_raises(payload: bytes) -> None:
    data = _JPEG[:2] + _app1(payload) + _JPEG[2:]
    result = read_exif(data)
    assert result is None or isinstance(result, ExifFacts)


@settings(max_examples=200, deadline=500)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_mutated_real_exif_never_raises(edits: list[tuple[int, int]]) -> None:
    tiff = bytearray(piexif.dump(FULL)[6:])
    for pos, value in edits:
        if pos < len(tiff):
            tiff[pos] = value
    result = read_exif(_JPEG[:2] + _app1(bytes(tiff)) + _JPEG[2:])
    assert result is None or isinstance(result, ExifFacts)


CONTAINER_PREFIXES = [
    b"\x00\x00\x00\x18ftypheic",
    b"\x00\x00\x00\x18ftypavif",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",
]


@settings(max_examples=500, deadline=500)
@given(st.sampled_from(CONTAINER_PREFIXES), st.binary(max_size=200))
def test_fuzz_other_containers_never_raise(prefix: bytes, tail: bytes) -> None:
    result = read_exif(prefix + tail)
    assert result is None or isinstance(result, ExifFacts)
