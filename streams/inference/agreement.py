"""How far a variant's event fields are from production's on the same photo.

Each task runner declares the figures it reports (``DeclaredRunner.figures``) and computes them
with the helpers here, from the two field dicts alone: the comparison needs no model, so the
report, the tests and the worker agree on what a figure means. Figures that are fractions of
agreement are 1.0 when equal; distances and error rates are 0.0 when equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

Figures = dict[str, float]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 if either is zero or their lengths differ)."""
    if len(a) != len(b) or not a:
        return 0.0
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norm if norm > 0 else 0.0


def euclidean(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance (dlib's face descriptors are compared this way)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def top_k_overlap(production: Sequence[dict[str, Any]], variant: Sequence[dict[str, Any]]) -> float:
    """Share of production's labels (by class index) that the variant also lists."""
    if not production:
        return 1.0 if not variant else 0.0
    ours = {label["class_index"] for label in production}
    theirs = {label["class_index"] for label in variant}
    return len(ours & theirs) / len(ours)


def box_iou(a: dict[str, float], b: dict[str, float]) -> float:
    """Intersection over union of two boxes given as x1, y1, x2, y2."""
    width = min(a["x2"], b["x2"]) - max(a["x1"], b["x1"])
    height = min(a["y2"], b["y2"]) - max(a["y1"], b["y1"])
    inter = max(0.0, width) * max(0.0, height)
    area_a = max(0.0, a["x2"] - a["x1"]) * max(0.0, a["y2"] - a["y1"])
    area_b = max(0.0, b["x2"] - b["x1"]) * max(0.0, b["y2"] - b["y1"])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    production: Sequence[dict[str, float]], variant: Sequence[dict[str, float]]
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, best IoU first: (production index, variant index, IoU)."""
    pairs = sorted(
        ((box_iou(p, v), i, j) for i, p in enumerate(production) for j, v in enumerate(variant)),
        reverse=True,
    )
    used_p: set[int] = set()
    used_v: set[int] = set()
    matched: list[tuple[int, int, float]] = []
    for iou, i, j in pairs:
        if iou <= 0 or i in used_p or j in used_v:
            continue
        used_p.add(i)
        used_v.add(j)
        matched.append((i, j, iou))
    return matched


def mean_matched_iou(
    production: Sequence[dict[str, float]], variant: Sequence[dict[str, float]]
) -> float:
    """Mean IoU over the larger side's boxes: a box the other side missed counts as 0."""
    larger = max(len(production), len(variant))
    if larger == 0:
        return 1.0
    return sum(iou for _, _, iou in match_boxes(production, variant)) / larger


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance in characters (two rows of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def reading_order_text(lines: Sequence[dict[str, Any]]) -> str:
    """The lines' text top to bottom, left to right (detectors list lines in their own order)."""

    def corner(line: dict[str, Any]) -> tuple[float, float]:
        quad = line.get("quad") or [{"x": 0.0, "y": 0.0}]
        return (min(p["y"] for p in quad), min(p["x"] for p in quad))

    return "\n".join(line["text"] for line in sorted(lines, key=corner))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits per reference character (0.0 when both are empty; can exceed 1.0)."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(reference, hypothesis) / len(reference)


def line_recall(production: Sequence[dict[str, Any]], variant: Sequence[dict[str, Any]]) -> float:
    """Share of production's lines whose exact text the variant read too (1.0 if none)."""
    if not production:
        return 1.0
    theirs = Counter(line["text"] for line in variant)
    found = 0
    for line in production:
        if theirs[line["text"]] > 0:
            theirs[line["text"]] -= 1
            found += 1
    return found / len(production)


def agree(a: object, b: object) -> float:
    """1.0 when equal, else 0.0 (a figure that is a share of photos)."""
    return 1.0 if a == b else 0.0
