"""Shared fixtures: skimage sample photos as OpenCV BGR arrays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from numpy.typing import NDArray

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
OTHERS = (
    "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "camera",
    "coins", "moon", "page", "text", "brick", "grass", "gravel", "clock",
)  # fmt: skip


def load_bgr(name: str) -> NDArray[np.uint8]:
    """Load a skimage sample image as contiguous BGR uint8."""
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return np.ascontiguousarray(image[:, :, 2::-1])


@pytest.fixture(scope="session", params=PHOTOS)
def photo(request: pytest.FixtureRequest) -> NDArray[np.uint8]:
    return load_bgr(str(request.param))


def encode(image: NDArray[np.uint8], ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return bytes(buf.tobytes())


def decode_shape(data: bytes, flags: int = cv2.IMREAD_COLOR) -> tuple[int, ...]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None
    return tuple(image.shape)
