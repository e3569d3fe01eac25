"""Bytes -> an upright BGR photo, refusing what must not be decoded.

Order of checks, cheapest first: empty, format sniffed from the bytes, dimensions read from the
header only (a 50000x50000 PNG is refused before one pixel is allocated), completeness (a JPEG
without its end marker is truncated), then ``cv2.imdecode``. Large JPEGs are decoded at 1/2, 1/4
or 1/8 scale straight from the DCT (``IMREAD_REDUCED_COLOR_*``) when the result still has at
least ``min_side`` pixels on its long side. EXIF orientation is applied here, not by OpenCV, so
width, height and every coordinate refer to the upright photo at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streams.errors import CorruptImageError, ImageTooLargeError, UnsupportedFormatError
from streams.imaging.header import HeaderError, exif_orientation, read_dimensions
from streams.imaging.sniff import SNIFF_BYTES, ImageFormat, require_image

Image = npt.NDArray[np.uint8]

DECODABLE = frozenset(
    {
        ImageFormat.JPEG,
        ImageFormat.PNG,
        ImageFormat.WEBP,
        ImageFormat.BMP,
        ImageFormat.TIFF,
        ImageFormat.GIF,
    }
)
_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright photo, maybe decoded at reduced size, with its full-resolution geometry."""

    image: Image  # BGR uint8, upright
    format: ImageFormat
    width: int  # full-resolution width of the upright photo
    height: int
    orientation: int  # EXIF orientation that was applied (1 = none)

    @property
    def scale(self) -> float:
        """Full-resolution pixels per decoded pixel (1, 2, 4 or 8, about)."""
        return self.width / int(self.image.shape[1])


class Decoder:
    """Decodes photos for the engine; every refusal is a typed PhotoError."""

    def __init__(self, max_pixels: int, min_side: int) -> None:
        self.max_pixels = max_pixels
        self.min_side = min_side

    def decode(self, data: bytes) -> DecodedPhoto:
        """Decode ``data`` (CorruptImageError, UnsupportedFormatError, ImageTooLargeError)."""
        if not data:
            raise CorruptImageError("the photo is empty (0 bytes)")
        fmt = require_image(data[:SNIFF_BYTES], "the photo")
        if fmt not in DECODABLE:
            raise UnsupportedFormatError(f"{fmt.value} photos are not supported")
        width, height = self._dimensions(data, fmt)
        _require_complete(data, fmt)
        reduction = self.reduction(fmt, width, height)
        flags = _REDUCED[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        if decoded is None or decoded.size == 0:
            raise CorruptImageError(f"OpenCV could not decode this {fmt.value} ({len(data)} bytes)")
        orientation = exif_orientation(data) if fmt in (ImageFormat.JPEG, ImageFormat.TIFF) else 1
        image = apply_orientation(np.asarray(decoded, dtype=np.uint8), orientation)
        if orientation >= 5:
            width, height = height, width
        return DecodedPhoto(np.ascontiguousarray(image), fmt, width, height, orientation)

    def _dimensions(self, data: bytes, fmt: ImageFormat) -> tuple[int, int]:
        try:
            dimensions = read_dimensions(data)
        except HeaderError as exc:
            raise CorruptImageError(f"unreadable {fmt.value} header: {exc}") from None
        if dimensions is None:
            raise CorruptImageError(f"unreadable {fmt.value} header")
        width, height = dimensions
        if width * height > self.max_pixels:
            raise ImageTooLargeError(
                f"{width}x{height} is {width * height / 1e6:.0f} MP; the limit is "
                f"{self.max_pixels / 1e6:.0f} MP (DARKROOM_ENGINE_MAX_PIXELS)"
            )
        return width, height

    def reduction(self, fmt: ImageFormat, width: int, height: int) -> int:
        """The largest JPEG DCT scale-down (8, 4, 2) that keeps min_side on the long side."""
        if fmt is not ImageFormat.JPEG:
            return 1  # only JPEG decoding gets faster; others would decode fully, then resize
        long_side = max(width, height)
        for factor in (8, 4, 2):
            if long_side // factor >= self.min_side:
                return factor
        return 1


def _require_complete(data: bytes, fmt: ImageFormat) -> None:
    """libjpeg pads a truncated JPEG with grey and succeeds; catch that before it does."""
    # the last end-of-image marker must come after the first start-of-scan (an EXIF
    # thumbnail has an end marker of its own, before the main image's scan)
    if fmt is ImageFormat.JPEG and data.rfind(b"\xff\xd9") < data.find(b"\xff\xda"):
        raise CorruptImageError(f"truncated JPEG: no end-of-image marker in {len(data)} bytes")
    if fmt is ImageFormat.PNG and data.rfind(b"IEND") == -1:
        raise CorruptImageError(f"truncated PNG: no IEND chunk in {len(data)} bytes")


def apply_orientation(image: Image, orientation: int) -> Image:
    """Turn a photo stored with EXIF orientation 1-8 upright."""
    return np.asarray(_orient(image, orientation), dtype=np.uint8)


def _orient(image: Image, orientation: int) -> npt.NDArray[Any]:
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
