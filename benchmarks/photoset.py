"""The benchmark photo set: real sample photos at the sizes a photo service sees.

Generated from scikit-image's photos (upscaled and re-encoded), so every run on every machine
measures the same bytes: small web images, phone-size photos and 12 MP camera JPEGs.
"""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data

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
    return encode_jpeg(np.asarray(resized, dtype=np.uint8), quality=quality)


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


# Real photos beyond the calibration set of the INT8 builds (models/*_int8 calibrate on
# streams.samples): scikit-image ships these offline too.
EXPERIMENT_SOURCES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "cat",
    "retina",
    "immunohistochemistry",
    "colorwheel",
    "clock",
    "horse",
    "moon",
    "brick",
    "page",
    "text",
)
WORDS = ("OPEN 24 HOURS", "EXIT", "Main Street", "SALE 50%", "Platform 9", "Darkroom", "No parking")


def _skimage(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    if image.dtype == bool:  # the horse is a silhouette
        image = np.where(image, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = 255 * (image - image.min()) / max(1e-9, float(image.max() - image.min()))
        image = image.astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image)


def augmented(image: np.ndarray, rng: np.random.Generator, text: str | None) -> np.ndarray:
    """A random crop (60-100% of each side), maybe mirrored, exposure and contrast moved,
    resized to a 640-1280 px long side; with ``text`` pasted in at a random size."""
    height, width = image.shape[:2]
    h, w = int(height * rng.uniform(0.6, 1.0)), int(width * rng.uniform(0.6, 1.0))
    y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    out = image[y : y + h, x : x + w]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.8, 1.2), beta=rng.uniform(-20, 20))
    scale = rng.uniform(640, 1280) / max(out.shape[:2])
    out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if text is not None:
        font_scale = rng.uniform(0.7, 3.0)
        thickness = max(1, int(font_scale * 2))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        ty = int(rng.integers(th + 10, max(th + 11, out.shape[0] - 10)))
        tx = int(rng.integers(5, max(6, out.shape[1] - tw - 5)))
        cv2.rectangle(out, (tx - 8, ty - th - 8), (tx + tw + 8, ty + 8), (255, 255, 255), -1)
        cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness)
    return np.ascontiguousarray(out)


def experiment_set(count: int, seed: int = 12) -> list[tuple[str, bytes]]:
    """``count`` distinct photos for shadow experiments: augmentations of EXPERIMENT_SOURCES,
    a third of them with a line of text pasted in (OCR needs photos with and without text)."""
    rng = np.random.default_rng(seed)
    sources = {name: _skimage(name) for name in EXPERIMENT_SOURCES}
    photos = []
    for i in range(count):
        name = EXPERIMENT_SOURCES[i % len(EXPERIMENT_SOURCES)]
        text = str(rng.choice(WORDS)) if i % 3 == 0 else None
        image = augmented(sources[name], rng, text)
        quality = int(rng.integers(70, 96))
        photos.append((f"{name}-{i}{'-text' if text else ''}", encode_jpeg(image, quality=quality)))
    return photos
