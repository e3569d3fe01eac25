"""A person's cover: which of their faces shows them best, and the square around it to show.

Each embedded face gets a score, the product of five figures in 0..1, so a face weak on any one
of them loses to a fair face on all of them:

- size: ``side / (side + SIZE_HALF)``, the face's side (the square root of its box's area) in
  photo pixels; large faces gain less and less (a face of 112 px scores 0.5, 448 px 0.8);
- sharpness: ``s / (s + FACE_IN_FOCUS)`` of the face's own sharpness
  (streams.imaging.quality.face_sharpness: the sample portraits' faces 0.13-0.62, the same faces
  blurred 0.007-0.076), so an in-focus face scores at least 0.5 and a blurred one under 0.45;
- pose: ``1 - 2 x`` the nose's offset from the eyes' midpoint, along the eye line and over the
  eyes' distance (BlazeFace's landmarks): 1 for a frontal face, 0 where the nose reaches an eye
  (a profile); the eye line's own tilt does not count, a tilted head still shows the face;
- the detector's confidence;
- the photo's exposure, ``0.5 + 0.5 x`` the best-shot ranking's exposure part (blown or black
  pixels, a mean far from grey: streams/pipeline/bestshot.py), halved at worst since it is the
  photo's, not the face's (a bright sky behind a well-lit face).

A figure an older event does not carry (sharpness, landmarks) counts as neutral (0.5, 1). A
person's cover is their best-scoring face so far (the earlier one on a tie, so a replay picks
the same); a photo processed again offers its faces again, so a forced re-drive of a user's
uploads (``darkroom replay --into photos.uploaded --force``) gives a person kept before covers
were scored the cover a clean run would choose. Its ``crop`` is a square around the face,
``MARGIN`` of the face's long side added on every side, shrunk to the photo's short side when
larger and slid inside the photo, in the photo's pixels; with the photo's largest JPEG
thumbnail (``preview``: its URI, size and the crop in its pixels) a client shows the cover
without decoding the photo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from streams.pipeline.bestshot import FACE_IN_FOCUS, Shot

SIZE_HALF: Final = 112.0  # a face this many pixels across scores 0.5 for size (an ArcFace chip)
MARGIN: Final = 0.5  # of the face's long side, added on each side of a cover's square
NEUTRAL_SHARPNESS: Final = FACE_IN_FOCUS  # an event without face sharpness: as if just in focus

Box = Sequence[float]  # x1, y1, x2, y2 in the upright photo's pixels


def score(
    box: Box,
    sharpness: float | None = None,
    landmarks: Sequence[Mapping[str, float]] | None = None,
    confidence: float | None = None,
    exposure: float | None = None,
) -> float:
    """How well a face shows its person (see the module doc), 0..1."""
    side = math.sqrt(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))
    sharp = NEUTRAL_SHARPNESS if sharpness is None else max(0.0, sharpness)
    return (
        side / (side + SIZE_HALF)
        * sharp / (sharp + FACE_IN_FOCUS)
        * frontal(landmarks)
        * (1.0 if confidence is None else min(1.0, max(0.0, confidence)))
        * (1.0 if exposure is None else 0.5 + 0.5 * min(1.0, max(0.0, exposure)))
    )  # fmt: skip


def exposure_of(fields: Mapping[str, Any]) -> float | None:
    """The photo's exposure part (0..1) as the best-shot ranking reads it; None unmeasured."""
    shot = Shot.of(fields)
    return None if shot is None else shot.parts()["exposure"]


def frontal(landmarks: Sequence[Mapping[str, float]] | None) -> float:
    """1 for a face looking at the camera, 0 for a profile: from its first three landmarks
    (image-left eye, image-right eye, nose tip); 1 without them."""
    if not landmarks or len(landmarks) < 3:
        return 1.0
    (lx, ly), (rx, ry), (nx, ny) = ((p["x"], p["y"]) for p in landmarks[:3])
    ex, ey = rx - lx, ry - ly
    eyes = math.hypot(ex, ey)
    if eyes < 1e-6:
        return 0.0  # the eyes on one point: seen from the side
    # the nose's offset from the eyes' midpoint, along the eye line, in eye distances
    along = ((nx - (lx + rx) / 2) * ex + (ny - (ly + ry) / 2) * ey) / (eyes * eyes)
    return max(0.0, 1.0 - 2.0 * abs(along))


def square(box: Box, width: int, height: int, margin: float = MARGIN) -> list[float]:
    """The cover square of a face ``box`` in a ``width`` x ``height`` photo (module doc)."""
    x1, y1, x2, y2 = box
    side = min(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin), float(min(width, height)))
    left = min(max((x1 + x2 - side) / 2, 0.0), width - side)
    top = min(max((y1 + y2 - side) / 2, 0.0), height - side)
    return [round(v, 1) for v in (left, top, left + side, top + side)]


def preview_of(assets: Mapping[str, Any] | None, width: int) -> dict[str, Any] | None:
    """The largest JPEG thumbnail of a photo ``width`` pixels wide whose PhotoEnriched
    ``assets`` are ``assets``: uri, width, height and ``scale`` (its pixels per photo pixel);
    None when no thumbnail was stored."""
    items = [
        item
        for item in ((assets or {}).get("items") or [])
        if item.get("content_type") == "image/jpeg"
    ]
    if not items or not width:
        return None
    largest = max(items, key=lambda item: item["width"] * item["height"])
    return {
        "uri": largest["uri"],
        "width": largest["width"],
        "height": largest["height"],
        "scale": largest["width"] / width,
    }


def cover_of(
    photo_id: str, box: Box, crop: Sequence[float] | None, preview: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A person's ``cover`` (as the people table keeps it and GET /users/{u}/people shows it)."""
    shown = None
    if preview is not None and crop is not None:
        scale = float(preview["scale"])
        shown = {
            "uri": preview["uri"],
            "width": preview["width"],
            "height": preview["height"],
            "crop": [round(v * scale, 1) for v in crop],
        }
    return {
        "photo_id": photo_id,
        "box": [round(float(v), 1) for v in box],
        "crop": None if crop is None else list(crop),
        "preview": shown,
    }


def unscored(box: Box) -> float:
    """The score of a face kept before faces were scored (only its box is known): below every
    scored face, so any of those replaces it, and among its kind the larger first, as then."""
    return score(box) - 1.0


def held(cluster: Mapping[str, Any]) -> float:
    """The score of the cover a cluster has (-2: none; below 0: one kept before covers were
    scored, see ``unscored``)."""
    cover = cluster.get("cover")
    if cover is None:
        return -2.0
    if "score" in cluster:
        return float(cluster["score"])
    return unscored(cover["box"])


def offer(cluster: dict[str, Any], cover: dict[str, Any] | None, scored: float) -> bool:
    """Make ``cover`` the cluster's when it scores higher than the one it has; True if so."""
    if cover is None or scored <= held(cluster):
        return False
    set_cover(cluster, cover, scored)
    return True


def set_cover(cluster: dict[str, Any], cover: dict[str, Any] | None, scored: float) -> None:
    """The cluster's cover is ``cover`` (None: none left) with ``scored``."""
    cluster["cover"], cluster["score"] = cover, round(scored, 6)
    cluster.pop("area", None)  # what clusters kept before covers were scored
