"""Tests for header-only dimension and orientation reading."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import cv2
import numpy as np
import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from streams.imaging.header import (
    HeaderError,
    display_dimensions,
    exif_orientation,
    iter_jpeg_segments,
    read_dimensions,
)
from tests.imaging.conftest import decode_shape, encode, load_bgr

SIZES = [(451, 300), (37, 23), (1, 1), (640, 7)]


def _image(width: int, height: int) -> NDArray[np.uint8]:
    base = load_bgr("chelsea")
    return np.asarray(
        cv2.resize(base, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8
    )


def _pil(image: NDArray[np.uint8], fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(buf, fmt, **kw)
    return buf.getvalue()


def _bmp_top_down(image: NDArray[np.uint8]) -> bytes:
    data = bytearray(encode(image, ".bmp"))
    (offset,) = struct.unpack_from("<I", data, 10)
    (height,) = struct.unpack_from("<i", data, 22)
    stride = (len(data) - offset) // height
    rows = [data[offset + i * stride : offset + (i + 1) * stride] for i in range(height)]
    struct.pack_into("<i", data, 22, -height)
    return bytes(data[:offset] + b"".join(reversed(rows)))


def _bmp_core(image: NDArray[np.uint8]) -> bytes:
    """24-bit BMP with the 12-byte OS/2 BITMAPCOREHEADER."""
    h, w = image.shape[:2]
    stride = (w * 3 + 3) & ~3
    rows = b"".join(image[y].tobytes() + b"\0" * (stride - w * 3) for y in range(h - 1, -1, -1))
    header = struct.pack("<IHHHH", 12, w, h, 1, 24)
    return b"BM" + struct.pack("<IHHI", 26 + len(rows), 0, 0, 26) + header + rows


def _tiff(image: NDArray[np.uint8], endian: str, dim_type: int, big: bool = False) -> bytes:
    """Uncompressed 8-bit grey single-strip (Big)TIFF; dim_type 3/4/16."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    e = "<" if endian == "II" else ">"
    pixels = grey.tobytes()
    n_entries = 8
    field = 8 if big else 4
    head_size = 16 if big else 8
    data_offset = head_size + (8 if big else 2) + (20 if big else 12) * n_entries + field

    def entry(tag: int, typ: int, value: int) -> bytes:
        packed = struct.pack(e + {3: "H", 4: "I", 16: "Q"}[typ], value).ljust(field, b"\0")
        return struct.pack(e + ("HHQ" if big else "HHI"), tag, typ, 1) + packed

    entries = [
        entry(256, dim_type, w), entry(257, dim_type, h), entry(258, 3, 8),
        entry(259, 3, 1), entry(262, 3, 1), entry(273, 4, data_offset),
        entry(278, 4, h), entry(279, 4, len(pixels)),
    ]  # fmt: skip
    if big:
        head = endian.encode() + struct.pack(e + "HHHQ", 43, 8, 0, 16)
        ifd = struct.pack(e + "Q", n_entries) + b"".join(entries) + struct.pack(e + "Q", 0)
    else:
        head = endian.encode() + struct.pack(e + "HI", 42, 8)
        ifd = struct.pack(e + "H", n_entries) + b"".join(entries) + struct.pack(e + "I", 0)
    return head + ifd + pixels


def _jpeg_with_fill_and_tem(image: NDArray[np.uint8]) -> bytes:
    data = encode(image, ".jpg")
    return data[:2] + b"\xff\x01" + b"\xff\xff\xff" + data[2:]


def _webp_vp8x(image: NDArray[np.uint8]) -> bytes:
    rgba = np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 128, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "WEBP", quality=80)
    return buf.getvalue()


ENCODERS: dict[str, Callable[[NDArray[np.uint8]], bytes]] = {
    "jpeg": lambda im: encode(im, ".jpg"),
    "jpeg-progressive": lambda im: encode(im, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    "jpeg-fill-tem": _jpeg_with_fill_and_tem,
    "png": lambda im: encode(im, ".png"),
    "webp-vp8": lambda im: encode(im, ".webp", cv2.IMWRITE_WEBP_QUALITY, 80),
    "webp-vp8l": lambda im: encode(im, ".webp"),
    "webp-vp8x": _webp_vp8x,
    "bmp": lambda im: encode(im, ".bmp"),
    "bmp-top-down": _bmp_top_down,
    "bmp-core": _bmp_core,
    "tiff-cv2": lambda im: encode(im, ".tiff"),
    "tiff-II-short": lambda im: _tiff(im, "II", 3),
    "tiff-II-long": lambda im: _tiff(im, "II", 4),
    "tiff-MM-short": lambda im: _tiff(im, "MM", 3),
    "tiff-MM-long": lambda im: _tiff(im, "MM", 4),
    "bigtiff-II-long8": lambda im: _tiff(im, "II", 16, big=True),
    "bigtiff-MM-short": lambda im: _tiff(im, "MM", 3, big=True),
    "bigtiff-pillow": lambda im: _pil(im, "TIFF", big_tiff=True),
    "gif": lambda im: encode(im, ".gif"),
}


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_matches_cv2_decode(fmt: str, size: tuple[int, int]) -> None:
    data = ENCODERS[fmt](_image(*size))
    shape = decode_shape(data)
    assert read_dimensions(data) == (shape[1], shape[0]) == size


def test_webp_animated_canvas() -> None:
    frames = [Image.new("RGB", (123, 45), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
    assert buf.getvalue()[12:16] == b"VP8X"
    assert read_dimensions(buf.getvalue()) == (123, 45)


def test_jpeg_exif_thumbnail_and_orientation() -> None:
    image = _image(451, 300)
    thumb = encode(_image(160, 120), ".jpg")  # embedded JPEG with its own SOF
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}, "1st": {}, "thumbnail": thumb})
    out = io.BytesIO()
    piexif.insert(exif, encode(image, ".jpg"), out)
    data = out.getvalue()
    assert read_dimensions(data) == (451, 300)  # stored, not the thumbnail's
    assert exif_orientation(data) == 6
    # cv2.imdecode(IMREAD_COLOR) applies the orientation -> transposed shape
    assert decode_shape(data)[:2] == (451, 300)
    assert display_dimensions(data) == (300, 451)
    assert decode_shape(data, cv2.IMREAD_UNCHANGED)[:2] == (300, 451)


def test_jpeg_fake_sof_inside_app_segment_is_skipped() -> None:
    data = encode(_image(64, 48), ".jpg")
    trap = b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff" + b"\0" * 20
    app = b"\xff\xe5" + struct.pack(">H", len(trap) + 2) + trap
    assert read_dimensions(data[:2] + app + data[2:]) == (64, 48)


def test_jpeg_segments_walk() -> None:
    data = _jpeg_with_fill_and_tem(_image(20, 10))
    markers = [m for m, _, _ in iter_jpeg_segments(data)]
    assert markers[0] == 0x01  # TEM, standalone
    assert 0xC0 in markers


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_values(orientation: int) -> None:
    out = io.BytesIO()
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}})
    piexif.insert(exif, encode(_image(40, 30), ".jpg"), out)
    assert exif_orientation(out.getvalue()) == orientation
    expected = (30, 40) if orientation >= 5 else (40, 30)
    assert display_dimensions(out.getvalue()) == expected


def test_exif_orientation_absent_or_bad() -> None:
    plain = encode(_image(40, 30), ".jpg")
    assert exif_orientation(plain) == 1
    assert exif_orientation(encode(_image(40, 30), ".png")) == 1
    assert exif_orientation(b"") == 1
    out = io.BytesIO()
    piexif.insert(piexif.dump({"0th": {piexif.ImageIFD.Orientation: 9}}), plain, out)
    assert exif_orientation(out.getvalue()) == 1
    broken = plain[:2] + b"\xff\xe1\x00\x0aExif\x00\x00MM"  # truncated TIFF header
    assert exif_orientation(broken + plain[2:]) == 1


@pytest.mark.parametrize("endian", ["II", "MM"])
def test_tiff_orientation_both_byte_orders(endian: str) -> None:
    data = bytearray(_tiff(_image(10, 8), endian, 3))
    e = "<" if endian == "II" else ">"
    struct.pack_into(e + "HHIH", data, 8 + 2 + 12 * 2, 0x0112, 3, 1, 8)  # BitsPerSample slot
    assert exif_orientation(bytes(data)) == 8


def test_png_bomb_claim_is_read_not_allocated() -> None:
    ihdr = struct.pack(">II5B", 50_000, 50_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"
    assert read_dimensions(data) == (50_000, 50_000)  # from the header: no pixel exists


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0\0\0\0\x01",  # zero width
        b"GIF89a\0\0\x10\0",  # zero width
        b"\xff\xd8\xff\xd9",  # EOI before SOF
        b"\xff\xd8\xff\xda\0\x02",  # SOS before SOF
        b"\xff\xd8\xff\xe0\0\x01",  # length < 2
        b"\xff\xd8\xff\xe0\xff\xff",  # segment longer than data
        b"\xff\xd8\xff\xc0\0\x11\x08\0\0\0\x10\x03",  # DNL height
        b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\0\0\0\0",  # bad start code
        b"RIFF\0\0\0\0WEBPXXXX",  # unknown chunk
        b"BM" + b"\0" * 12 + struct.pack("<I", 99999),  # silly DIB size
        b"II*\0\xff\xff\xff\xff",  # IFD offset past end
        b"II+\0\x04\0\0\0\x10\0\0\0\0\0\0\0",  # BigTIFF with 4-byte offsets
    ],
)
def test_broken_headers_raise_header_error(data: bytes) -> None:
    with pytest.raises(HeaderError):
        read_dimensions(data)


@pytest.mark.parametrize("data", [b"", b"\0" * 64, b"hello world", b"P6\n1 1\n255\n\0\0\0"])
def test_unknown_formats_return_none(data: bytes) -> None:
    assert read_dimensions(data) is None


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_every_truncation_is_clean(fmt: str) -> None:
    data = ENCODERS[fmt](_image(37, 23))
    full = read_dimensions(data)
    for cut in range(min(len(data), 700)):
        try:
            result = read_dimensions(data[:cut])
        except HeaderError:
            continue
        assert result is None or result == full


def _check_contract(data: bytes) -> None:
    try:
        result = read_dimensions(data)
    except HeaderError:
        pass
    else:
        if result is not None:
            w, h = result
            assert w > 0
            assert h > 0
    assert 1 <= exif_orientation(data) <= 8


MAGICS = [
    b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBPVP8 ", b"RIFF\0\0\0\0WEBPVP8L",
    b"RIFF\0\0\0\0WEBPVP8X", b"BM", b"II*\0", b"MM\0*", b"II+\0\x08\0\0\0", b"GIF89a",
]  # fmt: skip
_SEED_FORMATS = ("jpeg", "png", "webp-vp8", "webp-vp8x", "bmp", "tiff-MM-short", "bigtiff-II-long8")
_SEEDS = [ENCODERS[f](_image(9, 7)) for f in (*_SEED_FORMATS, "gif")]


@settings(max_examples=400, deadline=200)
@given(st.binary(max_size=256))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_contract(data)


@settings(max_examples=600, deadline=200)
@given(st.sampled_from(MAGICS), st.binary(max_size=128))
def test_fuzz_magic_prefix(magic: bytes, tail: bytes) -> None:
    _check_contract(magic + tail)


@settings(max_examples=600, deadline=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
    st.integers(0, 2000),
)
def test_fuzz_mutated_real_headers(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed[:cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    _check_contract(bytes(data))
