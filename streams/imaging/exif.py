"""EXIF facts (capture time, camera, lens, orientation, GPS) via ``exifread``.

For JPEG input only the APP1 Exif segment (at most 64 KiB) is handed to
``exifread``; it is located with the bounded marker walk from
:mod:`streams.imaging.header` (exifread's own JPEG scan only looks at the
first ~4 KB plus the preceding segments, so a large ICC profile or XMP
packet before APP1 hides the Exif from it).  WebP ``EXIF`` chunks are also
extracted here.  Other containers that ``exifread`` knows (TIFF, PNG
``eXIf``, HEIC) are passed through as-is.

``exifread`` is called with ``details=False`` (no MakerNote decoding, skips
the big ignorable tags) and ``extract_thumbnail=False``.  Before calling it,
:func:`_exif_work_estimate` bounds the number of IFD entries it would visit,
because a crafted IFD can make it loop for minutes (duplicated sub-IFD
pointers, long IFD chains).
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import exifread

from streams.imaging.header import HeaderError, jpeg_exif_tiff

__all__ = ["ExifFacts", "read_exif"]

_T = TypeVar("_T")
_LOG: Final = logging.getLogger(__name__)
# exifread logs (and prints) a warning for every photo without EXIF: that is normal here
logging.getLogger("exifread").setLevel(logging.ERROR)
_OFFSET_RE: Final = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")
_MAX_IFD_ENTRY_VISITS: Final = 20_000  # real files: a few hundred
_SUB_IFD_TAGS: Final = frozenset({0x8769, 0x8825, 0xA005})  # Exif, GPS, Interop


@dataclass(frozen=True, slots=True)
class ExifFacts:
    """Facts extracted from EXIF; every field is optional.

    ``taken_at`` is ISO-8601 (``YYYY-MM-DDTHH:MM:SS`` plus ``±HH:MM`` when the
    camera recorded an offset, otherwise naive local time).  Latitude and
    longitude are signed decimal degrees (N/E positive); altitude is metres,
    negative below sea level.
    """

    taken_at: str | None = None
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    orientation: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None


def read_exif(data: bytes) -> ExifFacts | None:
    """Extract :class:`ExifFacts` from an encoded image; never raises.

    Returns ``None`` when there is no (usable) EXIF at all, otherwise the
    facts that could be parsed; unparseable fields are left ``None``.
    """
    try:
        blob = _exif_blob(data)
        if blob is None or _exif_work_estimate(blob) > _MAX_IFD_ENTRY_VISITS:
            return None
        tags: dict[str, Any] = exifread.process_file(
            io.BytesIO(blob), details=False, extract_thumbnail=False, auto_seek=True
        )
    except Exception:  # exifread raises arbitrary types on junk
        _LOG.debug("exifread failed", exc_info=True)
        return None
    if not tags:
        return None
    facts = _facts_from_tags(tags)
    return None if facts == ExifFacts() else facts


# ---------------------------------------------------------------- input


def _exif_blob(data: bytes) -> bytes | None:
    """Return what to give exifread: the Exif TIFF blob for JPEG/WebP, else data."""
    if data[:3] == b"\xff\xd8\xff":
        try:
            return jpeg_exif_tiff(data)
        except HeaderError:
            return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_exif_tiff(data)
    return data


def _webp_exif_tiff(data: bytes) -> bytes | None:
    """Return the payload of a WebP ``EXIF`` chunk as a TIFF blob.

    exifread 3.5 assumes a 6-byte ``Exif`` + NUL NUL prefix that the WebP spec (and
    Pillow) do not write, and ignores odd-size chunk padding, so the RIFF
    chunks are walked here instead (each step advances >= 8 bytes).
    """
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if fourcc == b"EXIF":
            payload = data[pos + 8 : pos + 8 + size]
            return payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
        pos += 8 + size + (size & 1)
    return None


def _exif_work_estimate(blob: bytes) -> int:
    """Upper-bound the IFD entries exifread would visit for a TIFF blob.

    Mirrors exifread's traversal: the IFD chain from IFD0 (loop-checked) and,
    for every Exif/GPS/Interop pointer entry, the pointed-to IFD and its own
    pointers.  Declared entry counts are charged in full (exifread iterates
    them even past the end of the data) but only in-bounds entries are read.
    Stops as soon as the budget is exceeded, so its own cost is bounded too.
    Non-TIFF blobs (PNG, WebP, HEIC containers) return 0.
    """
    order = blob[:2]
    if order not in (b"II", b"MM") or len(blob) < 8:
        return 0
    e = "<" if order == b"II" else ">"
    n = len(blob)

    def u32(pos: int) -> int:
        return int(struct.unpack_from(e + "I", blob, pos)[0]) if 0 <= pos <= n - 4 else 0

    def declared(ifd: int) -> int:
        return int(struct.unpack_from(e + "H", blob, ifd)[0]) if 0 < ifd <= n - 2 else 0

    work = 0
    seen: set[int] = set()
    ifd = u32(4)
    # stack of (ifd offset, depth); depth 0 = main chain, 1-2 = sub-IFDs
    stack: list[tuple[int, int]] = []
    while (ifd and ifd not in seen) or stack:
        if ifd and ifd not in seen:
            seen.add(ifd)
            stack.append((ifd, 0))
            ifd = u32(ifd + 2 + 12 * declared(ifd))
        current, depth = stack.pop()
        count = declared(current)
        work += count
        if work > _MAX_IFD_ENTRY_VISITS:
            return work
        if depth >= 2:
            continue
        for i in range(min(count, (n - current - 2) // 12)):
            pos = current + 2 + 12 * i
            if struct.unpack_from(e + "H", blob, pos)[0] in _SUB_IFD_TAGS:
                stack.append((u32(pos + 8), depth + 1))
    return work


# ---------------------------------------------------------------- fields


def _facts_from_tags(tags: dict[str, Any]) -> ExifFacts:
    return ExifFacts(
        taken_at=_safe(_taken_at, tags),
        make=_safe(_text, tags, "Image Make"),
        model=_safe(_text, tags, "Image Model"),
        lens_model=_safe(_text, tags, "EXIF LensModel"),
        orientation=_safe(_orientation, tags),
        latitude=_safe(_coordinate, tags, "GPS GPSLatitude", "NS", 90.0),
        longitude=_safe(_coordinate, tags, "GPS GPSLongitude", "EW", 180.0),
        altitude=_safe(_altitude, tags),
    )


def _safe(fn: Callable[..., _T | None], *args: object) -> _T | None:
    """Call a field parser, mapping any exception to ``None``."""
    try:
        return fn(*args)
    except Exception:
        return None


def _text(tags: dict[str, Any], key: str) -> str | None:
    tag = tags.get(key)
    if tag is None:
        return None
    values = tag.values
    text = values.decode("utf-8", "replace") if isinstance(values, bytes) else str(values)
    text = text.replace("\x00", " ").strip()
    return text or None


def _taken_at(tags: dict[str, Any]) -> str | None:
    for stamp_key, offset_key in (
        ("EXIF DateTimeOriginal", "EXIF OffsetTimeOriginal"),
        ("EXIF DateTimeDigitized", "EXIF OffsetTimeDigitized"),
    ):
        stamp = _text(tags, stamp_key)
        if stamp is None:
            continue
        try:
            when = datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue  # "0000:00:00 00:00:00", blanks, junk
        iso = when.isoformat()
        offset = _text(tags, offset_key)
        if offset is not None and _OFFSET_RE.match(offset):
            iso += offset
        return iso
    return None


def _orientation(tags: dict[str, Any]) -> int | None:
    tag = tags.get("Image Orientation")
    if tag is None or not tag.values:
        return None
    value = int(tag.values[0])
    return value if 1 <= value <= 8 else None


def _rational(value: Any) -> float:
    """Convert an exifread Ratio (or int) to float; raise if not finite."""
    if getattr(value, "denominator", 1) == 0:
        raise ZeroDivisionError("zero denominator")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError("non-finite rational")
    return result


def _coordinate(tags: dict[str, Any], key: str, refs: str, limit: float) -> float | None:
    """Signed decimal degrees from a DMS triple; ``refs`` is "NS" or "EW"."""
    tag = tags.get(key)
    ref = _text(tags, key + "Ref")
    if tag is None or ref is None or len(tag.values) != 3:
        return None
    degrees, minutes, seconds = (_rational(v) for v in tag.values)
    if min(degrees, minutes, seconds) < 0 or minutes >= 60 or seconds >= 60:
        return None
    value = degrees + minutes / 60.0 + seconds / 3600.0
    if value > limit:
        return None
    hemisphere = ref.upper()[:1]
    if hemisphere not in refs:
        return None
    return round(-value if hemisphere == refs[1] else value, 7)


def _altitude(tags: dict[str, Any]) -> float | None:
    tag = tags.get("GPS GPSAltitude")
    if tag is None or not tag.values:
        return None
    metres = _rational(tag.values[0])
    ref = tags.get("GPS GPSAltitudeRef")
    if ref is not None and ref.values and int(ref.values[0]) == 1:
        metres = -metres  # 1 = below sea level
    return round(metres, 3)
