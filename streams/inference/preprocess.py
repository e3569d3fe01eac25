"""Photo -> network input. Geometry per photo (OpenCV, in the decode threads), arithmetic per batch.

``fit`` crops/resizes one photo to the model's size and records how model pixels map back to
photo pixels; ``to_tensor`` turns a list of fitted uint8 photos into one float32 tensor with a
single vectorised multiply-add (colour order, scale, mean, std and layout from the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streams.models.manifest import InputSpec

Image = npt.NDArray[np.uint8]
Tensor = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Placement:
    """Where the model input sits in the photo: photo_xy = model_xy * scale + offset."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_photo(self, points: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """Map (..., 2) model-pixel points to photo pixels."""
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float32)
        offset = np.array([self.offset_x, self.offset_y], dtype=np.float32)
        mapped: npt.NDArray[np.float32] = points.astype(np.float32) * scale + offset
        return mapped


def _resize(image: Image, width: int, height: int) -> Image:
    if min(width, height, *image.shape[:2]) < 1:  # callers round sizes; none may reach 0
        raise ValueError(f"cannot resize {image.shape[:2]} to {height}x{width}")
    shrinking = width < image.shape[1] or height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (width, height), interpolation=interpolation), np.uint8)


def fit(image: Image, spec: InputSpec, photo_scale: float = 1.0) -> tuple[Image, Placement]:
    """Fit a BGR photo to ``spec.size``. ``photo_scale``: original pixels per decoded pixel."""
    out_h, out_w = spec.size
    h, w = image.shape[:2]
    if min(h, w) < 1:
        raise ValueError(f"cannot fit an empty {w}x{h} image")
    if spec.resize == "stretch":
        fitted = _resize(image, out_w, out_h)
        return fitted, Placement(w / out_w * photo_scale, h / out_h * photo_scale, 0.0, 0.0)
    if spec.resize == "letterbox":
        ratio = min(out_w / w, out_h / h)
        new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        pad_x, pad_y = (out_w - new_w) // 2, (out_h - new_h) // 2
        fitted = np.zeros((out_h, out_w, 3), dtype=np.uint8)
        fitted[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = _resize(image, new_w, new_h)
        sx, sy = w / new_w * photo_scale, h / new_h * photo_scale
        return fitted, Placement(sx, sy, -pad_x * sx, -pad_y * sy)
    assert spec.resize_to is not None  # the manifest validator guarantees it for crop modes
    if spec.resize == "crop":  # short side to resize_to, aspect kept
        ratio = spec.resize_to / min(w, h)
        new_w, new_h = max(out_w, round(w * ratio)), max(out_h, round(h * ratio))
    else:  # stretch_crop
        new_w = new_h = spec.resize_to
    resized = _resize(image, new_w, new_h)
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    fitted = np.ascontiguousarray(resized[top : top + out_h, left : left + out_w])
    sx, sy = w / new_w * photo_scale, h / new_h * photo_scale
    return fitted, Placement(sx, sy, left * sx, top * sy)


class TensorMaker:
    """Stacks fitted uint8 photos into the normalised float32 tensor a model takes."""

    def __init__(self, spec: InputSpec) -> None:
        scale = np.float32(spec.scale)
        std = np.asarray(spec.std, dtype=np.float32)
        mean = np.asarray(spec.mean, dtype=np.float32)
        order = [2, 1, 0] if spec.color == "RGB" else [0, 1, 2]  # photos are BGR
        self._channels = order
        self._multiply = (scale / std)[None, None, None, :]
        self._add = (-mean / std)[None, None, None, :]
        self._nchw = spec.layout == "NCHW"

    def __call__(self, fitted: list[Image]) -> Tensor:
        """(N, H, W, 3) uint8 BGR -> the model's layout, colour order and value range."""
        batch = np.stack(fitted)[..., self._channels].astype(np.float32)
        batch *= self._multiply
        batch += self._add
        if self._nchw:
            batch = batch.transpose(0, 3, 1, 2)
        tensor: Tensor = np.ascontiguousarray(batch)
        return tensor
