"""Person covers: does the cover rule pick a person's good photo over worse copies of it?

    .venv/bin/python -m benchmarks.covers            # ~30 s: 6 portraits, 5 copies each
    .venv/bin/python -m benchmarks.covers --smoke    # ~10 s: 2 portraits

The photos: the six real portraits the face benchmarks share (benchmarks/portraits.py) and,
of each, five worse copies a library really holds: enlarged 1.6x and soft (a digital zoom: the
largest face of all), shaken (a 15 px motion blur), shrunk to half, darker (60%), and JPEG
q20. The engine finds and measures every face (BlazeFace's box, landmarks and confidence; the
face's sharpness). Each original then meets each of its copies, as two faces of one person
would in the stream: the rule keeps the one it scores higher, the earlier one on a tie (the
original comes first). Two rules side by side on the same faces: Darkroom's cover score
(streams/pipeline/covers.py: size x sharpness x pose x confidence x exposure) and "the largest
face", the rule before it. The report: per kind of copy, the share of contests the original wins.
What this set cannot say: pose, since no portrait here is turned away (the pose figure is
tested on landmarks in tests/pipeline/test_covers.py); and whether people would agree.
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
from streams.models.repository import ModelRepository
from streams.pipeline.faces import Face, faces_of
from streams.samples import encode_jpeg


def worse(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The copies of a portrait that should not be its cover."""
    big = cv2.resize(image, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    yield "enlarged 1.6x, soft", cv2.GaussianBlur(big, (0, 0), 3.0)
    shake = np.zeros((15, 15), np.float32)
    shake[7, :] = 1.0 / 15
    yield "shaken", cv2.filter2D(image, -1, shake)
    yield "shrunk to half", cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    yield "darker", (image * 0.6).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 20])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    yield "jpeg q20", decoded


def area(face: Face) -> float:
    x1, y1, x2, y2 = face.box
    return (x2 - x1) * (y2 - y1)


def main_face(result: Enriched) -> tuple[Face, float] | None:
    """The photo's largest embedded face and its sharpness, or None."""
    found = [
        (face, raw.get("sharpness") or 0.0)
        for face, raw in zip(faces_of(result.fields), result.fields["faces"] or [], strict=True)
        if face is not None
    ]
    return max(found, key=lambda f: area(f[0]), default=None)


def measure(smoke: bool) -> dict[str, Any]:
    settings = production_settings()
    enricher = Enricher(settings.engine, ModelRepository.from_settings(settings))
    contests: list[dict[str, Any]] = []
    missed: list[str] = []
    try:
        for name, image in originals(SMOKE[:2] if smoke else None).items():
            photos = [("original", image), *worse(image)]
            inputs = [PhotoInput(kind, encode_jpeg(pixels)) for kind, pixels in photos]
            faces = {}
            for (kind, _), result in zip(photos, enricher.enrich(inputs), strict=True):
                assert isinstance(result, Enriched), result
                face = main_face(result)
                if face is None:
                    missed.append(f"{name} {kind}")
                else:
                    faces[kind] = face
            if "original" not in faces:
                continue
            original, sharpness = faces.pop("original")
            for kind, (copy, copy_sharpness) in faces.items():
                contests.append(
                    {
                        "portrait": name,
                        "copy": kind,
                        "score": [original.score, copy.score],
                        "side": [area(original) ** 0.5, area(copy) ** 0.5],
                        "sharpness": [sharpness, copy_sharpness],
                        # the original first: a tie keeps it, as the earlier face
                        "darkroom": original.score >= copy.score,
                        "largest": area(original) >= area(copy),
                    }
                )
                print(contests[-1], flush=True)
    finally:
        enricher.close()
    return {"machine": machine(), "contests": contests, "no face found": missed}


def report(result: dict[str, Any]) -> str:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for contest in result["contests"]:
        kinds.setdefault(contest["copy"], []).append(contest)
    everything = result["contests"]
    lines = [
        "# Person covers: the original against worse copies of it",
        "",
        ran_on("covers", result["machine"])
        + f": the share of contests (a portrait's face against the "
        "same face in a worse copy) that each rule wins for the original (no face found in: "
        f"{', '.join(result['no face found']) or 'none'}).",
        "",
        "| copy | contests | Darkroom's cover score | the largest face |",
        "|---|---|---|---|",
    ]
    for kind, found in [*kinds.items(), ("all", everything)]:
        n = len(found) or 1
        darkroom = sum(c["darkroom"] for c in found) / n
        largest = sum(c["largest"] for c in found) / n
        lines.append(f"| {kind} | {len(found)} | {darkroom:.0%} | {largest:.0%} |")
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> None:
    run_measured("covers", __doc__ or "", "2 portraits", measure, report, argv)


if __name__ == "__main__":
    main()
