"""Fast anti-aliased downscaling shared by the feature modules."""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["area_resize"]

#: The integer pre-shrink keeps at least this many pixels per output pixel.
#: 8 keeps results within a few grey levels of single-stage INTER_AREA
#: (mean abs diff 0.08 at 64x64, 0.9 at 32x32 from 12 MP); 2 would be
#: faster but blurs enough to drop the Laplacian variance by 10-16 %.
_MIN_OVERSAMPLE: Final = 8


def area_resize(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """Resize with ``INTER_AREA`` (box filter), fast for big reductions.

    OpenCV's ``INTER_AREA`` is 6-10x faster when both scale factors are
    integers.  For reductions of 16x or more the image is first box-averaged
    by the largest integer factor that keeps it at least 8x the target size
    (cropping the < factor remainder rows/columns, split between both
    edges), then area-resized to the exact target.  Raises ValueError for an empty
    image or target (a 0 side would divide by zero below, or allocate nothing useful).
    """
    h, w = image.shape[:2]
    if min(w, h, width, height) < 1:
        raise ValueError(f"cannot resize {w}x{h} to {width}x{height}: every side must be >= 1")
    factor = min(w // (_MIN_OVERSAMPLE * width), h // (_MIN_OVERSAMPLE * height))
    if factor >= 2:
        cw, ch = w - w % factor, h - h % factor
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        cropped = image[y0 : y0 + ch, x0 : x0 + cw]
        image = np.asarray(
            cv2.resize(cropped, (cw // factor, ch // factor), interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
