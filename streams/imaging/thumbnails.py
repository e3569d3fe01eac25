"""Thumbnails and previews from the pixels the engine already decoded: no second decode.

    specs = thumbnail_specs([256, 1440], ["webp", "jpeg"], quality=80)
    for asset in render_thumbnails(decoded_photo, original_bytes, specs):
        asset.name, asset.width, asset.height, asset.data, asset.sha256   # "256.webp", ...

The decoded photo is already upright (EXIF orientation applied by the decoder), so a thumbnail
needs no orientation tag; it carries no metadata at all (the encoders are given none: no GPS,
no camera serial). Colours are converted to sRGB when the original embeds another ICC profile
(Display P3 from phones, Adobe RGB from cameras): a browser shows an untagged image as sRGB, so
unconverted wide-gamut pixels would look dull. The conversion runs on the small image, after the
resize, where it costs a fraction of what it would on the photo.

A thumbnail is never larger than the photo: a 200 px photo's "256" thumbnail is 200 px. The
engine decodes at least the largest size's long side (``Enricher._needed_side``), so previews
come from real pixels, never upscaled ones.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
from PIL import Image, ImageCms

from streams.imaging.decode import DecodedPhoto
from streams.imaging.resize import area_resize

ThumbnailFormat = Literal["webp", "jpeg"]

#: Bump when the output of the same photo and settings changes (resize, colour, encoder).
THUMBNAILER: Final = {"name": "darkroom-thumbnails", "version": "1"}
CONTENT_TYPES: Final[dict[str, str]] = {"webp": "image/webp", "jpeg": "image/jpeg"}
_EXTENSIONS: Final[dict[str, str]] = {"webp": "webp", "jpeg": "jpg"}


@dataclass(frozen=True)
class ThumbnailSpec:
    """One asset to make: the long side in pixels and the format."""

    size: int
    format: ThumbnailFormat
    quality: int
    effort: int = 4  # WebP's method, 0 (fastest) to 6 (smallest); libwebp's default is 4

    @property
    def name(self) -> str:
        """The asset's file name under its photo's folder: ``256.webp``, ``1440.jpg``."""
        return f"{self.size}.{_EXTENSIONS[self.format]}"


@dataclass(frozen=True)
class Thumbnail:
    """One encoded asset of one photo."""

    spec: ThumbnailSpec
    width: int
    height: int
    data: bytes
    sha256: str
    srgb_from: str | None  # the embedded profile converted from, None when there was none

    @property
    def name(self) -> str:
        return self.spec.name


def thumbnail_specs(
    sizes: list[int],
    formats: list[ThumbnailFormat],
    quality: int,
    effort: int = 4,
    webp_max_size: int = 4096,
) -> list[ThumbnailSpec]:
    """Every size in every format, largest size first; a size above ``webp_max_size`` is
    written in JPEG alone when JPEG is one of the formats (a large WebP costs the engine far
    more than a JPEG: benchmarks/thumbnails.py)."""
    specs = []
    for size in sorted(set(sizes), reverse=True):
        chosen = [
            f for f in formats if f != "webp" or size <= webp_max_size or "jpeg" not in formats
        ]
        specs += [ThumbnailSpec(size, fmt, quality, effort) for fmt in chosen]
    return specs


def render_thumbnails(
    photo: DecodedPhoto, original: bytes, specs: list[ThumbnailSpec]
) -> list[Thumbnail]:
    """Each of ``specs`` made from ``photo`` (decoded from ``original``, whose ICC profile is
    read here); ValueError if an encoder refuses (the caller keeps the photo's other fields)."""
    if not specs:
        return []
    profile = embedded_profile(original)
    made: list[Thumbnail] = []
    # largest first, each size shrunk from the one before: a 256 px thumbnail from the 1440 px
    # preview's pixels costs a tenth of one from the decoded photo (benchmarks/thumbnails.py)
    source, converted = photo.image, {}
    for size in sorted({spec.size for spec in specs}, reverse=True):
        source = _resize(photo, source, size)
        converted[size] = to_srgb(source, profile)
    for spec in specs:
        image = converted[spec.size]
        data = encode(image, spec.format, spec.quality, spec.effort)
        made.append(
            Thumbnail(
                spec,
                int(image.shape[1]),
                int(image.shape[0]),
                data,
                hashlib.sha256(data).hexdigest(),
                profile.description if profile is not None else None,
            )
        )
    return made


def fitted_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled so its long side is ``long_side`` (never grown)."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_pixels(photo: DecodedPhoto, size: int, profile: Profile | None) -> np.ndarray:
    """The BGR pixels of ``photo``'s thumbnail of long side ``size``, in sRGB, not encoded."""
    return to_srgb(_resize(photo, photo.image, size), profile)


def _resize(photo: DecodedPhoto, source: np.ndarray, size: int) -> np.ndarray:
    """``source`` (the decoded photo, or a larger thumbnail of it) at long side ``size``."""
    decoded_h, decoded_w = photo.image.shape[:2]
    # the photo's full size bounds the thumbnail; the decoded pixels bound it too (no upscale)
    width, height = fitted_size(photo.width, photo.height, size)
    if width > decoded_w or height > decoded_h:
        width, height = decoded_w, decoded_h
    source_h, source_w = source.shape[:2]
    if (width, height) == (source_w, source_h):
        return source
    if source_w < 2 * width:
        # less than half away: bicubic is as close to a Lanczos resize of the full photo as
        # the box filter (SSIM 0.994-0.999 both) in a fifth of its time
        return np.asarray(cv2.resize(source, (width, height), interpolation=cv2.INTER_CUBIC))
    return area_resize(source, width, height)


def encode(image: np.ndarray, fmt: ThumbnailFormat, quality: int, effort: int = 4) -> bytes:
    """BGR pixels as WebP or JPEG bytes, no metadata; ValueError if the encoder cannot.

    WebP goes through Pillow, whose encoder takes libwebp's ``method`` (``effort``): OpenCV's
    has none and always spends method 4, 95 ms on a 1440 px preview here, where method 2 takes
    43 ms for 5% more bytes (benchmarks/thumbnails.py). Both encoders release the GIL.
    """
    if fmt == "webp":
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(
            buffer, "WEBP", quality=quality, method=effort
        )
        return buffer.getvalue()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    ok, encoded = cv2.imencode(".jpg", image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape[1]}x{image.shape[0]} JPEG")
    return bytes(encoded.tobytes())


@dataclass(frozen=True)
class Profile:
    """An embedded ICC profile that is not sRGB, with its transform to sRGB."""

    description: str
    transform: ImageCms.ImageCmsTransform


def embedded_profile(original: bytes) -> Profile | None:
    """The original's ICC profile when it is one to convert from; None for none, sRGB, a
    non-RGB profile or one littleCMS cannot read (the pixels are then taken as sRGB)."""
    try:
        with Image.open(io.BytesIO(original)) as opened:  # reads the header, not the pixels
            icc = opened.info.get("icc_profile")
    except Exception:  # the decoder already accepted these bytes; Pillow may know less
        return None
    if not icc:
        return None
    return _PROFILES.get(bytes(icc))


class _ProfileCache:
    """Transforms by profile bytes: a library holds a few profiles, built once each (~ms)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._built: OrderedDict[str, Profile | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, icc: bytes) -> Profile | None:
        key = hashlib.sha256(icc).hexdigest()
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key]
        profile = _build(icc)
        with self._lock:
            self._built[key] = profile
            while len(self._built) > self.capacity:
                self._built.popitem(last=False)
        return profile


def _build(icc: bytes) -> Profile | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(source) or "").strip()
        if source.profile.xcolor_space.strip() != "RGB" or description.startswith("sRGB"):
            return None
        transform = ImageCms.buildTransform(
            source,
            _SRGB,
            "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            # littleCMS's one-pixel cache is shared by the threads that use a transform
            flags=ImageCms.Flags.NOCACHE,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return Profile(description or "unnamed ICC profile", transform)


def to_srgb(image: np.ndarray, profile: Profile | None) -> np.ndarray:
    """``image`` (BGR) converted from ``profile`` to sRGB; as it is when ``profile`` is None."""
    if profile is None:
        return image
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    converted = ImageCms.applyTransform(rgb, profile.transform)
    assert converted is not None  # applyTransform returns None only when asked in place
    return np.ascontiguousarray(np.asarray(converted, dtype=np.uint8)[:, :, ::-1])


_SRGB = ImageCms.createProfile("sRGB")
_PROFILES = _ProfileCache()
