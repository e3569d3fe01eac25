"""The benchmark photo set: real sample photos at the sizes a photo service sees.

Generated from scikit-image's photos (upscaled and re-encoded), so every run on every machine
measures the same bytes: small web images, phone-size photos and 12 MP camera JPEGs.
"""

from __future__ import annotations

import cv2

from streams.samples import encode_jpeg, load_photo

SOURCES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle",
    "hubble_deep_field",
    "sign",
    "camera",
)
SIZES = {"small": (640, 480), "phone": (2016, 1512), "12mp": (4000, 3000)}


def photo(name: str, size: str, quality: int = 90) -> bytes:
    """``name`` resized to the ``size`` class (aspect kept by fitting the long side), as JPEG."""
    image = load_photo(name)
    long_side = max(SIZES[size])
    scale = long_side / max(image.shape[:2])
    resized = cv2.resize(
        image,
        None,
        fx=scale,
        fy=scale,
        interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA,
    )
    return encode_jpeg(resized, quality=quality)


def mixed_set(count: int) -> list[tuple[str, bytes]]:
    """``count`` photos cycling through sources; 1 in 4 is 12 MP, 1 in 4 phone size, half small."""
    sizes = ("small", "phone", "small", "12mp")
    return [
        (
            f"{SOURCES[i % len(SOURCES)]}-{sizes[i % 4]}-{i}",
            photo(SOURCES[i % len(SOURCES)], sizes[i % 4]),
        )
        for i in range(count)
    ]
