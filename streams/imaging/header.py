"""Header-only image dimension and orientation reading.

These functions inspect only the container/codec header of an encoded image
(JPEG, PNG, WebP, BMP, TIFF, GIF) and never decode pixels.  They are meant to
run *before* any decoder so that decompression bombs (tiny files that claim
gigantic dimensions) can be refused cheaply.

Safety properties:

* Every read is bounds-checked against ``len(data)``; the only exception that
  escapes is :class:`HeaderError` (a :class:`ValueError`).
* Every loop strictly advances through the buffer, so parsing terminates in
  ``O(len(data))`` steps at worst (JPEG marker walk), usually ``O(1)``.
* Nothing is allocated based on a size read from the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import Final

__all__ = [
    "HeaderError",
    "display_dimensions",
    "exif_orientation",
    "iter_jpeg_segments",
    "jpeg_exif_tiff",
    "jpeg_scan_count",
    "read_dimensions",
]


class HeaderError(ValueError):
    """The data looks like a supported format but its header is unusable."""


# SOFn markers that carry frame dimensions.  C4 (DHT), C8 (JPG, reserved) and
# CC (DAC) share the range but are not frame headers.
_JPEG_SOF: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# Markers without a length field: TEM, RST0-7, SOI.  (EOI/SOS are handled apart.)
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})
_JPEG_EOI: Final = 0xD9
_JPEG_SOS: Final = 0xDA
_JPEG_APP1: Final = 0xE1
# A marker that ends entropy-coded data: 0xFF then anything but 0x00 (a stuffed 0xFF data
# byte), RST0-7 (restart markers belong to the scan) or 0xFF (fill before the real marker).
_JPEG_NEXT_MARKER: Final = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")

_PNG_SIG: Final = b"\x89PNG\r\n\x1a\n"
_PNG_MAX: Final = 2**31 - 1
_TIFF_ORIENTATION: Final = 0x0112
_TIFF_WIDTH: Final = 0x0100
_TIFF_LENGTH: Final = 0x0101
_TIFF_SHORT: Final = 3
_TIFF_LONG: Final = 4
_TIFF_LONG8: Final = 16
_TIFF_MAX_ENTRIES: Final = 4096  # real IFD0s hold a few dozen entries


def _u8(data: bytes, pos: int) -> int:
    if pos < 0 or pos >= len(data):
        raise HeaderError(f"truncated: need byte at offset {pos}, have {len(data)}")
    return data[pos]


def _need(data: bytes, pos: int, size: int) -> None:
    if pos < 0 or pos + size > len(data):
        raise HeaderError(f"truncated: need {size} bytes at offset {pos}, have {len(data)}")


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, ...]:
    """``struct.unpack_from`` of integer fields, raising HeaderError if short."""
    _need(data, pos, struct.calcsize(fmt))
    return struct.unpack_from(fmt, data, pos)


def _positive(width: int, height: int, fmt: str) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise HeaderError(f"{fmt}: invalid dimensions {width}x{height}")
    return width, height


# --------------------------------------------------------------------- JPEG


def iter_jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(marker, payload_start, payload_end)`` for JPEG header segments.

    Walks from SOI up to (not into) the first SOS or EOI.  Fill bytes
    (repeated ``0xFF``) before a marker are skipped; standalone markers
    (TEM, RSTn) are yielded with an empty payload.  Raises HeaderError on
    truncation or when a byte other than ``0xFF`` appears where a marker
    must start.
    """
    if data[:2] != b"\xff\xd8":
        raise HeaderError("JPEG: missing SOI marker")
    pos = 2
    n = len(data)
    while True:
        if _u8(data, pos) != 0xFF:
            raise HeaderError(f"JPEG: expected marker at offset {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes: any number of 0xFF
            pos += 1
        marker = _u8(data, pos)
        pos += 1
        if marker == 0x00:
            raise HeaderError(f"JPEG: stuffed byte outside entropy data at {pos - 2}")
        if marker in _JPEG_STANDALONE:
            yield marker, pos, pos
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            return
        (length,) = _unpack(">H", data, pos)
        if length < 2:
            raise HeaderError(f"JPEG: bad segment length {length} at offset {pos}")
        end = pos + length
        if end > n:
            raise HeaderError(f"JPEG: segment 0x{marker:02X} truncated")
        yield marker, pos + 2, end
        pos = end  # strictly increasing: length >= 2


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    for marker, start, end in iter_jpeg_segments(data):
        if marker in _JPEG_SOF:
            if end - start < 6:
                raise HeaderError("JPEG: SOF segment too short")
            _precision, height, width = struct.unpack_from(">BHH", data, start)
            if height == 0:
                raise HeaderError("JPEG: height deferred to DNL marker (unsupported)")
            return _positive(width, height, "JPEG")
    raise HeaderError("JPEG: no SOF segment before scan data")


def jpeg_exif_tiff(data: bytes) -> bytes | None:
    """Return the TIFF-structured payload of the first JPEG APP1 Exif segment.

    The returned bytes start at the TIFF byte-order mark (``II``/``MM``).
    Returns ``None`` if there is no Exif segment; raises HeaderError if the
    JPEG header structure itself is broken before one is found.
    """
    for marker, start, end in iter_jpeg_segments(data):
        if marker == _JPEG_APP1 and data[start : start + 6] == b"Exif\x00\x00":
            return data[start + 6 : end]
        if marker in _JPEG_SOF:
            # Exif must precede the frame header; stop walking here.
            return None
    return None


def jpeg_scan_count(data: bytes, limit: int) -> int:
    """Count the scans (SOS segments) of a JPEG up to its first EOI, without decoding.

    A decoder makes one pass over the whole frame per scan, so a 1.4 MB progressive JPEG
    with 20,000 tiny scans decodes for a minute. Segments are skipped by their length and
    each scan's entropy-coded data by searching for the next marker (in C: ``re``), so the
    cost is one linear pass at most; counting stops at ``limit + 1``. Bytes between segments
    are skipped as libjpeg skips them. Raises HeaderError on a segment cut short.
    """
    if data[:2] != b"\xff\xd8":
        raise HeaderError("JPEG: missing SOI marker")
    scans = 0
    pos = 2
    while scans <= limit and (found := _JPEG_NEXT_MARKER.search(data, pos)) is not None:
        marker, pos = data[found.start() + 1], found.end()
        if marker == _JPEG_EOI:
            break
        if marker in _JPEG_STANDALONE:
            continue
        (length,) = _unpack(">H", data, pos)
        if length < 2:
            raise HeaderError(f"JPEG: bad segment length {length} at offset {pos}")
        scans += marker == _JPEG_SOS
        pos += length  # strictly increasing; for SOS, the entropy data follows
    return scans


# ---------------------------------------------------------- other formats


def _png_dimensions(data: bytes) -> tuple[int, int]:
    (length,) = _unpack(">I", data, 8)
    width, height = _unpack(">II", data, 16)
    if data[12:16] != b"IHDR" or length != 13:
        raise HeaderError("PNG: first chunk is not a 13-byte IHDR")
    if width > _PNG_MAX or height > _PNG_MAX:
        raise HeaderError("PNG: dimension exceeds 2^31-1")
    return _positive(width, height, "PNG")


def _webp_dimensions(data: bytes) -> tuple[int, int]:
    fourcc = data[12:16]
    if len(fourcc) < 4:
        raise HeaderError("WebP: truncated before first chunk")
    if fourcc == b"VP8 ":
        # 3-byte frame tag, start code 9D 01 2A, then 14-bit width/height.
        _need(data, 23, 7)
        if data[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("WebP: bad VP8 start code")
        w, h = _unpack("<HH", data, 26)
        return _positive(w & 0x3FFF, h & 0x3FFF, "WebP")
    if fourcc == b"VP8L":
        if _u8(data, 20) != 0x2F:
            raise HeaderError("WebP: bad VP8L signature")
        (bits,) = _unpack("<I", data, 21)
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "WebP")
    if fourcc == b"VP8X":
        w_lo, w_hi, h_lo, h_hi = _unpack("<HBHB", data, 24)  # two 24-bit LE fields
        return _positive((w_lo | w_hi << 16) + 1, (h_lo | h_hi << 16) + 1, "WebP")
    raise HeaderError(f"WebP: unknown first chunk {fourcc!r}")


def _bmp_dimensions(data: bytes) -> tuple[int, int]:
    (dib_size,) = _unpack("<I", data, 14)
    if dib_size == 12:  # BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit
        w, h = _unpack("<HH", data, 18)
        return _positive(w, h, "BMP")
    if dib_size < 16 or dib_size > 4096:
        raise HeaderError(f"BMP: unsupported DIB header size {dib_size}")
    w, h = _unpack("<ii", data, 18)
    if h == -(2**31):
        raise HeaderError("BMP: invalid height")
    return _positive(w, abs(h), "BMP")  # negative height = top-down rows


def _gif_dimensions(data: bytes) -> tuple[int, int]:
    w, h = _unpack("<HH", data, 6)
    return _positive(w, h, "GIF")


def _tiff_ifd0_entries(tiff: bytes) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(tag, type, count, value_field_offset)`` for IFD0 entries.

    ``tiff`` must start at the byte-order mark.  Handles classic TIFF
    (magic 42, 12-byte entries) and BigTIFF (magic 43, 20-byte entries).
    """
    order = tiff[:2]
    if order == b"II":
        e = "<"
    elif order == b"MM":
        e = ">"
    else:
        raise HeaderError("TIFF: bad byte-order mark")
    (magic,) = _unpack(e + "H", tiff, 2)
    if magic == 42:
        (ifd,) = _unpack(e + "I", tiff, 4)
        (count,) = _unpack(e + "H", tiff, ifd)
        head, entry_fmt, entry_size, value_at = 2, e + "HHI", 12, 8
    elif magic == 43:
        offset_size, _zero, ifd = _unpack(e + "HHQ", tiff, 4)
        if offset_size != 8:
            raise HeaderError("BigTIFF: offset size must be 8")
        (count,) = _unpack(e + "Q", tiff, ifd)
        head, entry_fmt, entry_size, value_at = 8, e + "HHQ", 20, 12
    else:
        raise HeaderError(f"TIFF: unsupported magic {magic}")
    if count == 0 or count > _TIFF_MAX_ENTRIES:
        raise HeaderError(f"TIFF: implausible IFD0 entry count {count}")
    for i in range(count):
        pos = ifd + head + entry_size * i
        tag, typ, n = _unpack(entry_fmt, tiff, pos)
        yield tag, typ, n, pos + value_at


def _tiff_int(tiff: bytes, typ: int, count: int, pos: int) -> int | None:
    """Read a single inline SHORT, LONG or LONG8 value, else None."""
    if count < 1:
        return None
    e = "<" if tiff[:2] == b"II" else ">"
    fmt = {_TIFF_SHORT: "H", _TIFF_LONG: "I", _TIFF_LONG8: "Q"}.get(typ)
    return None if fmt is None else int(_unpack(e + fmt, tiff, pos)[0])


def _tiff_dimensions(data: bytes) -> tuple[int, int]:
    width = height = None
    for tag, typ, count, pos in _tiff_ifd0_entries(data):
        if tag == _TIFF_WIDTH:
            width = _tiff_int(data, typ, count, pos)
        elif tag == _TIFF_LENGTH:
            height = _tiff_int(data, typ, count, pos)
        if width is not None and height is not None:
            return _positive(width, height, "TIFF")
    raise HeaderError("TIFF: IFD0 lacks SHORT/LONG ImageWidth and ImageLength")


# ------------------------------------------------------------- public API


def read_dimensions(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` from the header of an encoded image.

    Supports JPEG (first SOFn frame header), PNG (IHDR), WebP (VP8, VP8L,
    VP8X canvas), BMP (absolute height; negative means top-down), TIFF and
    BigTIFF (IFD0, both byte orders, SHORT/LONG/LONG8) and GIF (logical screen).

    The values are the *stored* dimensions; for EXIF orientations 5-8 the
    displayed (and ``cv2.imdecode``-returned) image is transposed, see
    :func:`display_dimensions`.

    Returns ``None`` when the signature matches none of these formats.
    Raises :class:`HeaderError` when the signature matches but the header is
    truncated or inconsistent.  Never decodes pixels.
    """
    head = data[:16]
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg_dimensions(data)
    if head[:8] == _PNG_SIG:
        return _png_dimensions(data)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_dimensions(data)
    if head[:2] == b"BM":
        return _bmp_dimensions(data)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_dimensions(data)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_dimensions(data)
    return None


def exif_orientation(data: bytes) -> int:
    """Return the EXIF orientation (1..8) of a JPEG or TIFF, 1 if absent.

    Reads only the APP1 Exif segment (JPEG) or IFD0 (TIFF).  Never raises:
    a malformed header or an out-of-range value yields 1 (orientation is
    advisory; dimension checks should use :func:`read_dimensions`).
    """
    try:
        if data[:3] == b"\xff\xd8\xff":
            tiff = jpeg_exif_tiff(data)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            tiff = data
        else:
            return 1
        if tiff is None:
            return 1
        for tag, typ, count, pos in _tiff_ifd0_entries(tiff):
            if tag == _TIFF_ORIENTATION:
                value = _tiff_int(tiff, typ, count, pos)
                return value if value is not None and 1 <= value <= 8 else 1
    except HeaderError:
        return 1
    return 1


def display_dimensions(data: bytes) -> tuple[int, int] | None:
    """Like :func:`read_dimensions` but swapped for EXIF orientations 5-8.

    This matches the shape ``cv2.imdecode`` returns with ``IMREAD_COLOR``,
    which applies the EXIF orientation.
    """
    dims = read_dimensions(data)
    if dims is not None and exif_orientation(data) >= 5:
        return dims[1], dims[0]
    return dims
