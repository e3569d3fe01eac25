"""Bytes -> an upright BGR photo, refusing what must not be decoded.

Order of checks, cheapest first: empty, format sniffed from the bytes, dimensions read from the
header only (a 50000x50000 PNG is refused before one pixel is allocated), geometry (a 1x100000
strip is refused: below ``MIN_SIDE`` pixels or beyond ``max_aspect_ratio`` no model sees
anything, and every resize of it degenerates), completeness (a JPEG without its end marker is
truncated), the JPEG's scan count (each scan is one more pass over the whole photo), then
``cv2.imdecode``.

Nothing is kept at full resolution: the runners need a long side of ``min_side`` (960 with
OCR), so large JPEGs are decoded at 1/2, 1/4 or 1/8 scale straight from the DCT
(``IMREAD_REDUCED_COLOR_*``) and every other photo is shrunk by an integer factor right after
``cv2.imdecode``, inside a ``Budget`` of decoded pixels: a 10000x10000 PNG holds 600 MB at the
peak of ``cv2.imdecode`` (OpenCV keeps a second copy), then 4.7 MB at 1250x1250. EXIF
orientation is applied here, not by OpenCV, so width, height and every coordinate refer to the
upright photo at full resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from streams.errors import (
    CorruptImageError,
    DeadlineExceededError,
    DegenerateImageError,
    ImageTooComplexError,
    ImageTooLargeError,
    UnsupportedFormatError,
)
from streams.imaging.budget import Budget
from streams.imaging.exif import ExifFacts, read_exif
from streams.imaging.header import HeaderError, jpeg_scan_count, read_dimensions
from streams.imaging.sniff import SNIFF_BYTES, ImageFormat, require_image

Image = npt.NDArray[np.uint8]

#: One JPEG block: a narrower photo has no detail a model or a measure could use (the OCR
#: detector's smallest box is 3 px, a face 1/16 of the photo, the perceptual hash 32x32).
MIN_SIDE: Final = 8

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
    exif: ExifFacts | None = None  # parsed once, here: the orientation and the event's facts

    @property
    def scale(self) -> float:
        """Full-resolution pixels per decoded pixel (an integer, about: see Decoder.shrink)."""
        return self.width / int(self.image.shape[1])


class Decoder:
    """Decodes photos for the engine; every refusal is a typed PhotoError."""

    def __init__(
        self,
        max_pixels: int,
        min_side: int,
        max_aspect_ratio: float = 50.0,
        max_jpeg_scans: int = 100,
        budget: Budget | None = None,
    ) -> None:
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.max_aspect_ratio = max_aspect_ratio
        self.max_jpeg_scans = max_jpeg_scans
        self.budget = budget

    def decode(self, data: bytes, deadline: float = math.inf) -> DecodedPhoto:
        """Decode ``data``: a typed PhotoError for each refusal (see the module doc);
        DeadlineExceededError if the pixel budget has no room by ``deadline`` (monotonic)."""
        if not data:
            raise CorruptImageError("the photo is empty (0 bytes)")
        fmt = require_image(data[:SNIFF_BYTES], "the photo")
        if fmt not in DECODABLE:
            raise UnsupportedFormatError(f"{fmt.value} photos are not supported")
        width, height = self._dimensions(data, fmt)
        _require_complete(data, fmt)
        if fmt is ImageFormat.JPEG:
            self._require_few_scans(data)
        reduction = self.reduction(fmt, width, height)
        pixels = -(-width // reduction) * -(-height // reduction)
        if self.budget is not None and not self.budget.acquire(pixels, deadline):
            raise DeadlineExceededError(
                f"no room to decode {width}x{height} before the deadline: other photos held "
                f"the decode memory (DARKROOM_ENGINE_MAX_DECODED_PIXELS_IN_FLIGHT)"
            )
        try:
            # the full-size buffer lives only inside this block: shrink() replaces it
            flags = _REDUCED[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
            if decoded is None or decoded.size == 0:
                raise CorruptImageError(
                    f"OpenCV could not decode this {fmt.value} ({len(data)} bytes)"
                )
            decoded = self.shrink(np.asarray(decoded, dtype=np.uint8))
        finally:
            if self.budget is not None:
                self.budget.release(pixels)
        exif = read_exif(data)
        orientation = _orientation(exif) if fmt in (ImageFormat.JPEG, ImageFormat.TIFF) else 1
        image = apply_orientation(decoded, orientation)
        if orientation >= 5:
            width, height = height, width
        return DecodedPhoto(np.ascontiguousarray(image), fmt, width, height, orientation, exif)

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
        short, long = sorted((width, height))
        if short < MIN_SIDE:
            raise DegenerateImageError(
                f"{width}x{height}: a side shorter than {MIN_SIDE} pixels has nothing to enrich"
            )
        if long > short * self.max_aspect_ratio:
            raise DegenerateImageError(
                f"{width}x{height}: aspect ratio {long / short:.0f}:1 is beyond "
                f"{self.max_aspect_ratio:g}:1 (DARKROOM_ENGINE_MAX_ASPECT_RATIO)"
            )
        return width, height

    def _require_few_scans(self, data: bytes) -> None:
        try:
            scans = jpeg_scan_count(data, self.max_jpeg_scans)
        except HeaderError as exc:
            raise CorruptImageError(f"unreadable JPEG: {exc}") from None
        if scans > self.max_jpeg_scans:
            raise ImageTooComplexError(
                f"more than {self.max_jpeg_scans} scans (a progressive JPEG has about 10; "
                "each costs a pass over the whole photo; DARKROOM_ENGINE_MAX_JPEG_SCANS)"
            )

    def reduction(self, fmt: ImageFormat, width: int, height: int) -> int:
        """The largest JPEG DCT scale-down (8, 4, 2) that keeps min_side on the long side."""
        if fmt is not ImageFormat.JPEG:
            return 1  # only JPEG decoding gets faster; others would decode fully, then resize
        long_side = max(width, height)
        for factor in (8, 4, 2):
            if long_side // factor >= self.min_side:
                return factor
        return 1

    def shrink(self, image: Image) -> Image:
        """Shrink by the largest integer factor that keeps min_side on the long side.

        The result's long side is below 2 x min_side, as a DCT-reduced JPEG's; an integer
        factor keeps INTER_AREA on OpenCV's fast path and ``DecodedPhoto.scale`` exact to half
        a decoded pixel on both axes.
        """
        h, w = image.shape[:2]
        factor = max(h, w) // self.min_side
        if factor < 2:
            return image
        size = (max(1, round(w / factor)), max(1, round(h / factor)))
        return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _require_complete(data: bytes, fmt: ImageFormat) -> None:
    """libjpeg pads a truncated JPEG with grey and succeeds; catch that before it does."""
    # the last end-of-image marker must come after the first start-of-scan (an EXIF
    # thumbnail has an end marker of its own, before the main image's scan)
    if fmt is ImageFormat.JPEG and data.rfind(b"\xff\xd9") < data.find(b"\xff\xda"):
        raise CorruptImageError(f"truncated JPEG: no end-of-image marker in {len(data)} bytes")
    if fmt is ImageFormat.PNG and data.rfind(b"IEND") == -1:
        raise CorruptImageError(f"truncated PNG: no IEND chunk in {len(data)} bytes")


def _orientation(exif: ExifFacts | None) -> int:
    """The EXIF orientation to apply: 1 (none) when absent, unreadable or out of range."""
    value = exif.orientation if exif is not None else None
    return value if value is not None and 1 <= value <= 8 else 1


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
