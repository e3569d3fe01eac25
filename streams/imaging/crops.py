"""Crop boxes for covers, memories and shares: one per aspect ratio, keeping faces whole.

    saliency = salient_map(decoded.image)              # in the decode thread, ~1 ms
    crop = crop_box(width, height, (4, 5), face_boxes, saliency)
    crop.box, crop.basis, crop.faces_whole             # (x1, y1, x2, y2) in photo pixels

Each crop is the largest box of its ratio inside the (upright, full-resolution) photo, placed by
the first rule that applies:

1. ``faces``: every detected face fits: the box is centred on them all;
2. ``largest_faces``: not all fit: faces are taken largest first while they still fit together;
3. ``salient``: no face: the box slides along the photo's free axis to hold the most of a
   spectral-residual saliency map (Hou and Zhang, CVPR 2007: the part of the log spectrum a
   smoothed copy does not explain; a 64 px grey image, a few FFTs, about a millisecond);
4. ``centre``: no face and no saliency map.

A box that fits the whole photo's side is the whole side: a 1:1 crop of a square photo is the
photo. Rendering the crops is left to whoever shows them: the boxes are in the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the upright photo
Basis = Literal["faces", "largest_faces", "salient", "centre"]

#: Bump when the same photo and faces would get other boxes.
CROPPER: Final = {"name": "darkroom-crops", "version": "1"}
SALIENCY_SIDE: Final = 64  # the map's long side: the method's scale (the paper uses 64)


@dataclass(frozen=True)
class Crop:
    """One ratio's crop of one photo."""

    ratio: str  # "4:5"
    box: Box
    basis: Basis
    faces_whole: int  # detected faces entirely inside the box

    def as_record(self) -> dict[str, object]:
        """The PhotoEnriched ``crops`` entry."""
        x1, y1, x2, y2 = self.box
        return {
            "ratio": self.ratio,
            "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
            "basis": self.basis,
            "faces_whole": self.faces_whole,
        }


def parse_ratio(text: str) -> tuple[int, int]:
    """ "4:5" -> (4, 5); ValueError for anything else."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{text!r} is not a ratio like 4:5")
    return int(parts[0]), int(parts[1])


def salient_map(image: np.ndarray) -> np.ndarray:
    """The spectral-residual saliency of a BGR image, long side ``SALIENCY_SIDE``, summing to 1."""
    height, width = image.shape[:2]
    scale = SALIENCY_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    spectrum = np.fft.fft2(grey.astype(np.float32))
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2.5)
    total = float(saliency.sum())
    return saliency / total if total > 0 else np.full_like(saliency, 1.0 / saliency.size)


def crop_box(
    width: int,
    height: int,
    ratio: tuple[int, int],
    faces: list[Box],
    saliency: np.ndarray | None = None,
) -> Crop:
    """The crop of ``ratio`` for a ``width`` x ``height`` photo (see the module doc)."""
    rw, rh = ratio
    if width * rh >= height * rw:  # the photo is wider than the ratio: full height
        crop_w, crop_h = height * rw / rh, float(height)
    else:
        crop_w, crop_h = float(width), width * rh / rw
    kept = _faces_that_fit(faces, crop_w, crop_h)
    basis: Basis
    if kept:
        basis = "faces" if len(kept) == len(faces) else "largest_faces"
        x1, y1, x2, y2 = _union(kept)
        left, top = (x1 + x2 - crop_w) / 2, (y1 + y2 - crop_h) / 2
    elif saliency is not None:
        basis = "salient"
        left, top = _most_salient(saliency, width, height, crop_w, crop_h)
    else:
        basis = "centre"
        left, top = (width - crop_w) / 2, (height - crop_h) / 2
    left = min(max(left, 0.0), width - crop_w)
    top = min(max(top, 0.0), height - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    return Crop(f"{rw}:{rh}", box, basis, sum(inside(face, box) for face in faces))


def crops_of(
    fields: dict[str, Any], ratios: list[tuple[int, int]], saliency: np.ndarray | None
) -> list[dict[str, object]]:
    """The PhotoEnriched ``crops`` of a photo whose other fields (width, height, faces) are
    ``fields``: one entry per ratio."""
    faces = face_boxes(fields)
    width, height = fields["width"], fields["height"]
    return [crop_box(width, height, r, faces, saliency).as_record() for r in ratios]


def face_boxes(fields: dict[str, Any]) -> list[Box]:
    """The boxes of a PhotoEnriched's ``faces`` (or the engine's fields) as tuples."""
    return [
        (f["box"]["x1"], f["box"]["y1"], f["box"]["x2"], f["box"]["y2"])
        for f in fields.get("faces") or []
    ]


def _faces_that_fit(faces: list[Box], crop_w: float, crop_h: float) -> list[Box]:
    """Faces largest first, each kept if it still fits in one box with those kept before."""
    kept: list[Box] = []
    for face in sorted(faces, key=lambda f: (f[2] - f[0]) * (f[3] - f[1]), reverse=True):
        x1, y1, x2, y2 = _union([*kept, face])
        if x2 - x1 <= crop_w and y2 - y1 <= crop_h:
            kept.append(face)
    return kept


def _union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def inside(face: Box, box: Box, slack: float = 0.5) -> bool:
    """Whether ``face`` lies entirely in ``box`` (half a pixel of rounding allowed)."""
    return (
        face[0] >= box[0] - slack
        and face[1] >= box[1] - slack
        and face[2] <= box[2] + slack
        and face[3] <= box[3] + slack
    )


def _most_salient(
    saliency: np.ndarray, width: int, height: int, crop_w: float, crop_h: float
) -> tuple[float, float]:
    """The crop's top-left corner where it holds the most saliency (it moves along one axis)."""
    map_h, map_w = saliency.shape
    if crop_w < width:  # slides horizontally
        mass, span, length = saliency.sum(axis=0), map_w * crop_w / width, float(width)
    else:
        mass, span, length = saliency.sum(axis=1), map_h * crop_h / height, float(height)
    window = max(1, round(span))
    sums = np.convolve(mass, np.ones(window), mode="valid")
    best = int(np.argmax(sums))
    start = best * length / len(mass)
    return (start, 0.0) if crop_w < width else (0.0, start)
