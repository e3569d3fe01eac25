"""Technical photo quality measures and dominant colours.

All functions take OpenCV-style BGR ``uint8`` arrays of shape ``(H, W, 3)``
(a 2-D grey array is also accepted by :func:`measure_quality`).  Work is done
on a fixed-size copy (long side 512, or a 64x64 thumbnail for colours) so
results are comparable across resolutions; for big inputs the cost is
dominated by that one ``INTER_AREA`` resize, so callers computing several
features should make :func:`working_image` once and pass it around.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from streams.imaging.resize import area_resize

__all__ = [
    "DEFAULT_BLUR_THRESHOLD",
    "WORKING_LONG_SIDE",
    "Quality",
    "dominant_colors",
    "face_sharpness",
    "measure_quality",
    "to_working_grey",
    "working_image",
]

WORKING_LONG_SIDE: Final = 512
#: Laplacian variance (grey 0..255, long side 512) below which an image is
#: called blurry.  Sharp skimage photos (astronaut, chelsea, coffee, rocket)
#: measure 215..861; after GaussianBlur(sigma=3) 2.3..4.7, after sigma=1.5
#: 6..24.  50 sits in the gap, roughly the geometric mean of 24 and 215.
DEFAULT_BLUR_THRESHOLD: Final = 50.0
_DARK: Final = 0.05
_BRIGHT: Final = 0.95
_THUMB: Final = 64
_KMEANS_ITERATIONS: Final = 30


@dataclass(frozen=True, slots=True)
class Quality:
    """Exposure and sharpness measurements; luma values are in 0..1."""

    blur_variance: float
    is_blurry: bool
    brightness: float
    contrast: float
    underexposed_fraction: float
    overexposed_fraction: float


def _check_image(image: NDArray[np.uint8], allow_grey: bool) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError("image must be a uint8 numpy array")
    ok_colour = image.ndim == 3 and image.shape[2] == 3
    if not (ok_colour or (allow_grey and image.ndim == 2)):
        raise ValueError(f"expected HxWx3 BGR image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")


def working_image(
    image: NDArray[np.uint8], long_side: int = WORKING_LONG_SIDE
) -> NDArray[np.uint8]:
    """Resize so the long side is ``long_side`` (BGR or grey kept as is).

    Downscaling uses ``INTER_AREA`` (anti-aliased, fast integer pre-shrink),
    upscaling ``INTER_CUBIC``.  Computing this once and passing it to
    :func:`measure_quality`, :func:`dominant_colors` and ``phash`` gives the
    same results as passing the full-size image, at a fraction of the cost.
    """
    _check_image(image, allow_grey=True)
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    width, height = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 1:
        return area_resize(image, width, height)
    if scale == 1:
        return image
    return np.asarray(
        cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC), dtype=np.uint8
    )


def to_working_grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Convert to grey and resize so the long side is :data:`WORKING_LONG_SIDE`.

    Converting first is cheaper: ``cvtColor`` on 12 MP costs ~2 ms while
    resizing three channels costs 3x a single one.
    """
    _check_image(image, allow_grey=True)
    if image.ndim == 3:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    return working_image(image)


def measure_quality(
    image: NDArray[np.uint8], blur_threshold: float = DEFAULT_BLUR_THRESHOLD
) -> Quality:
    """Measure sharpness and exposure of a BGR image.

    * ``blur_variance``: variance of the 3x3 Laplacian of the working-size
      grey image (0..255 scale); low means few edges, i.e. blurry or flat.
    * ``brightness`` / ``contrast``: mean / standard deviation of luma
      (BT.601, as ``cv2.COLOR_BGR2GRAY``) in 0..1.
    * ``underexposed_fraction`` / ``overexposed_fraction``: share of pixels
      with luma < 0.05 / > 0.95.

    All values are computed on the working-size image (long side 512).
    Featureless images (sky, walls) also score low: ``is_blurry`` means
    "no sharp detail", not necessarily camera shake.
    """
    grey = to_working_grey(image)
    blur_variance = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    total = float(hist.sum())
    levels = np.arange(256, dtype=np.float64) / 255.0
    mean = float(hist @ levels) / total
    var = max(float(hist @ (levels - mean) ** 2) / total, 0.0)
    dark = float(hist[levels < _DARK].sum()) / total
    bright = float(hist[levels > _BRIGHT].sum()) / total
    return Quality(
        blur_variance=blur_variance,
        is_blurry=blur_variance < blur_threshold,
        brightness=mean,
        contrast=float(np.sqrt(var)),
        underexposed_fraction=dark,
        overexposed_fraction=bright,
    )


#: The side a face's crop is brought to before its Laplacian is taken, so a face's sharpness
#: compares across photos and sizes: a face smaller than this is enlarged, and reads softer,
#: as it looks softer.
FACE_SIDE: Final = 96


def face_sharpness(image: NDArray[np.uint8], box: Sequence[float]) -> float:
    """How sharp one face is: the variance of the Laplacian of ``box`` (x1, y1, x2, y2 in
    ``image``'s pixels) cropped, grey, at :data:`FACE_SIDE` square, over the crop's own
    variance. 0.0 for a box with no pixels inside, or a flat one."""
    _check_image(image, allow_grey=True)
    height, width = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    crop = image[y1:y2, x1:x2]
    if crop.ndim == 3:
        crop = np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    shrink = min(crop.shape[:2]) > FACE_SIDE
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    square = cv2.resize(crop, (FACE_SIDE, FACE_SIDE), interpolation=method).astype(np.float32)
    # over the crop's own variance: a dim or low-contrast face is not a blurred one
    spread = float(square.var())
    return float(cv2.Laplacian(square, cv2.CV_32F).var()) / spread if spread > 1e-6 else 0.0


# ----------------------------------------------------------- dominant colours


def _kmeans_pp(
    points: NDArray[np.float32], k: int, rng: np.random.Generator
) -> NDArray[np.float32]:
    """k-means++ seeding; returns fewer than ``k`` centres for few distinct points."""
    centres = [points[int(rng.integers(len(points)))]]
    d2 = ((points - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        total = float(d2.sum())
        if total <= 0.0:
            break  # every point coincides with a centre already
        idx = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
        centres.append(points[min(idx, len(points) - 1)])
        d2 = np.minimum(d2, ((points - centres[-1]) ** 2).sum(axis=1))
    return np.stack(centres).astype(np.float32)


def _cluster_sums(
    labels: NDArray[np.intp], values: NDArray[np.floating], n: int
) -> NDArray[np.float64]:
    """Per-cluster sums of ``values`` rows (bincount per column; no np.add.at)."""
    return np.stack(
        [np.bincount(labels, weights=values[:, c], minlength=n) for c in range(values.shape[1])],
        axis=1,
    )


def _kmeans(points: NDArray[np.float32], k: int, seed: int) -> tuple[NDArray[np.intp], int]:
    """Lloyd's k-means with k-means++ seeding; returns labels and cluster count."""
    rng = np.random.default_rng(seed)
    centres = _kmeans_pp(points, k, rng)
    labels = np.zeros(len(points), dtype=np.intp)
    for _ in range(_KMEANS_ITERATIONS):
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is constant per row
        d2 = (centres * centres).sum(axis=1)[None, :] - 2.0 * (points @ centres.T)
        new_labels = np.argmin(d2, axis=1)
        counts = np.bincount(new_labels, minlength=len(centres))
        sums = _cluster_sums(new_labels, points, len(centres))
        keep = counts > 0
        new_centres = sums[keep] / counts[keep, None]
        converged = bool(np.array_equal(new_labels, labels)) and keep.all()
        if not keep.all():  # drop empty clusters and relabel compactly
            remap = np.cumsum(keep) - 1
            new_labels = remap[new_labels]
        labels, centres = new_labels, new_centres.astype(np.float32)
        if converged:
            break
    return labels, len(centres)


def dominant_colors(image: NDArray[np.uint8], k: int = 5, seed: int = 0) -> list[tuple[str, float]]:
    """Return up to ``k`` dominant colours as ``('#rrggbb', fraction)``, largest first.

    The image is reduced to a 64x64 ``INTER_AREA`` thumbnail (pixel-area
    fractions survive the non-uniform scaling), clustered in CIELAB with
    k-means (k-means++ seeding, fixed ``seed``, so results are
    deterministic), and each cluster is reported as the mean sRGB colour of
    its pixels.  Fractions sum to 1.  Fewer than ``k`` entries are returned
    when the image has fewer distinct colours.
    """
    _check_image(image, allow_grey=False)
    if k < 1:
        raise ValueError("k must be >= 1")
    thumb = area_resize(image, _THUMB, _THUMB)
    lab = cv2.cvtColor(thumb, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    rgb = thumb[:, :, ::-1].reshape(-1, 3).astype(np.float64)
    labels, n = _kmeans(lab, k, seed)
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    sums = _cluster_sums(labels, rgb, n)
    means = np.clip(np.rint(sums / counts[:, None]), 0, 255).astype(np.int64)
    fractions = counts / counts.sum()
    result = [
        ("#{:02x}{:02x}{:02x}".format(*(int(c) for c in m)), float(f))
        for m, f in zip(means, fractions, strict=True)
    ]
    result.sort(key=lambda item: (-item[1], item[0]))
    return result
