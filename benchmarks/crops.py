"""Face-aware crops against centre crops: the share of detected faces each keeps whole, per ratio.

    .venv/bin/python -m benchmarks.crops            # ~1 min: 6 portraits, 60 group photos
    .venv/bin/python -m benchmarks.crops --smoke    # ~15 s: 2 portraits, 4 group photos

The photos: the six real portraits the face benchmarks share (benchmarks/portraits.py), each
also placed off-centre on a wide and on a tall canvas (a subject at the edge of the frame), and
generated group photos: 2 to 5 of the portraits, shrunk, side by side at random heights on a
3:1 or 2:1 canvas (seeded: every run the same). The engine finds the faces (BlazeFace); both
crops are then judged against those faces: the face-aware crop (``crop_box``, the event's
``crops``) and the centre crop of the same size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from benchmarks import production_settings, ran_on, run_measured
from benchmarks.engine import machine
from benchmarks.portraits import SMOKE, originals
from streams.engine import Enriched, Enricher, PhotoInput
from streams.imaging.crops import crop_box, face_boxes, inside, parse_ratio
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg

GREY = (128, 128, 128)


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    scale = height / image.shape[0]
    size = (max(1, round(image.shape[1] * scale)), height)
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def off_centre(portraits: dict[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """Each portrait alone, then at the right edge of a wide canvas and the top of a tall one."""
    for name, image in portraits.items():
        yield name, image
        person = _fit(image, 480)
        wide = np.full((480, 1600, 3), GREY, np.uint8)
        wide[:, 1600 - person.shape[1] :] = person
        yield f"{name}-right", wide
        tall_person = _fit(image, 600)[:, :600]
        tall = np.full((1500, tall_person.shape[1], 3), GREY, np.uint8)
        tall[:600] = tall_person
        yield f"{name}-top", tall


def groups(portraits: dict[str, np.ndarray], count: int) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` group photos of 2-5 people side by side at random heights (seeded)."""
    rng = np.random.default_rng(26)
    faces = list(portraits.values())
    for i in range(count):
        people = int(rng.integers(2, 6))
        height = 400
        strips = [_fit(faces[int(rng.integers(len(faces)))], height) for _ in range(people)]
        strips = [s[:, : min(s.shape[1], 360)] for s in strips]
        width = max(sum(s.shape[1] for s in strips), height * int(rng.choice([2, 3])))
        canvas = np.full((height + 200, width, 3), GREY, np.uint8)
        x = int(rng.integers(0, width - sum(s.shape[1] for s in strips) + 1))
        for strip in strips:
            y = int(rng.integers(0, 201))
            canvas[y : y + height, x : x + strip.shape[1]] = strip
            x += strip.shape[1]
        yield f"group-{i}-{people}", canvas


def judge(enriched: Enriched) -> dict[str, dict[str, int]]:
    """Per ratio: faces, and how many the event's (face-aware) crop and the centre crop of the
    same size keep whole."""
    fields = enriched.fields
    faces = face_boxes(fields)
    found: dict[str, dict[str, int]] = {}
    for crop in fields["crops"]:
        centre = crop_box(fields["width"], fields["height"], parse_ratio(crop["ratio"]), [])
        found[crop["ratio"]] = {
            "faces": len(faces),
            "face_aware": crop["faces_whole"],
            "centre": sum(inside(face, centre.box) for face in faces),
        }
    return found


def measure(smoke: bool) -> dict[str, Any]:
    settings = production_settings()
    enricher = Enricher(settings.engine, ModelRepository.from_settings(settings))
    portraits = originals(SMOKE[:2] if smoke else None)
    sets = {
        "portraits, alone and off-centre": list(off_centre(portraits)),
        "group photos (2-5 people)": list(groups(portraits, 4 if smoke else 60)),
    }
    rows = []
    try:
        for label, photos in sets.items():
            totals: dict[str, dict[str, int]] = {}
            inputs = [PhotoInput(name, encode_jpeg(image)) for name, image in photos]
            for i in range(0, len(inputs), 16):
                for result in enricher.enrich(inputs[i : i + 16]):
                    assert isinstance(result, Enriched), result
                    for ratio, counts in judge(result).items():
                        for key, value in counts.items():
                            totals.setdefault(ratio, {}).setdefault(key, 0)
                            totals[ratio][key] += value
            for ratio, t in totals.items():
                rows.append({"set": label, "photos": len(photos), "ratio": ratio, **t})
                print(rows[-1], flush=True)
    finally:
        enricher.close()
    return {"machine": machine(), "rows": rows}


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Face-aware crops",
        "",
        ran_on("crops", result["machine"])
        + ": the share of the faces the engine found that each crop "
        "keeps whole.",
        "",
        "| photos | ratio | faces | face-aware crop | centre crop |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        faces = row["faces"] or 1
        lines.append(
            f"| {row['set']} ({row['photos']}) | {row['ratio']} | {row['faces']} | "
            f"{row['face_aware'] / faces:.1%} | {row['centre'] / faces:.1%} |"
        )
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> None:
    run_measured("crops", __doc__ or "", "2 portraits, 4 group photos", measure, report, argv)


if __name__ == "__main__":
    main()
