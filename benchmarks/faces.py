"""Face embeddings: what aligning from the detector's landmarks costs, against dlib's own way.

    .venv/bin/python -m benchmarks.faces        (make bench-faces; needs dlib-bin, the build extra)
    .venv/bin/python -m benchmarks.faces --smoke    # seconds: 3 portraits, each original + mirror

dlib's pipeline finds 5 landmarks with its own shape predictor on its own detector's box and
cuts its chip with ``get_face_chip``; Darkroom aligns BlazeFace's landmarks onto dlib's mean
face shape and runs the converted ResNet. Both embed the same real portraits and turned,
shrunk, enlarged and mirrored copies of them (benchmarks/portraits.py). The report: each face's
distance between the two pipelines, and the same-person and different-people distances under
each (dlib's line: 0.6). Also milliseconds per face chip of the ONNX model.

Writes benchmarks/results/faces.json and faces.md (not in --smoke), and prints the tables.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from typing import Any

import cv2
import dlib  # type: ignore[import-untyped,import-not-found,unused-ignore]
import numpy as np

from benchmarks import out_of, output_args, write_results
from benchmarks.portraits import PEOPLE, SMOKE, copies, darkroom_embed, originals
from streams.config import load_settings
from streams.engine import Enricher
from streams.inference.tasks.face_embed import FaceEmbedRunner
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.models.sources import find_package_file

MODELS = "face_recognition_models/models/"
SMOKE_COPIES = ("original", "mirror")  # "a copy to its original" needs one copy at least


class DlibPipeline:
    """dlib's own detector, 5-point landmarks and chip, and its own ResNet."""

    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        landmarks = find_package_file(
            "face-recognition-models", MODELS + "shape_predictor_5_face_landmarks.dat"
        )
        network = find_package_file(
            "face-recognition-models", MODELS + "dlib_face_recognition_resnet_model_v1.dat"
        )
        self.landmarks = dlib.shape_predictor(str(landmarks))
        self.network = dlib.face_recognition_model_v1(str(network))

    def embed(self, bgr: np.ndarray) -> np.ndarray | None:
        """The largest face's descriptor, or None when dlib's detector finds no face."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = self.detector(rgb, 1)
        if not faces:
            return None
        face = max(faces, key=lambda d: d.width())
        chip = dlib.get_face_chip(rgb, self.landmarks(rgb, face), size=150, padding=0.25)
        return np.array(self.network.compute_face_descriptor(np.asarray(chip)))


def spread(values: list[float]) -> dict[str, float]:
    """min / mean / max, rounded."""
    return {
        k: round(float(f(values)), 3) for k, f in (("min", min), ("mean", np.mean), ("max", max))
    }


def pair_distances(vectors: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Same-person and different-people distances between the original photos."""
    same: list[float] = []
    different: list[float] = []
    for a, b in itertools.combinations(vectors, 2):
        (same if PEOPLE[a] == PEOPLE[b] else different).append(
            float(np.linalg.norm(vectors[a] - vectors[b]))
        )
    return {"same person": spread(same), "different people": spread(different)}


def chip_ms(enricher: Enricher, tries: int = 5) -> dict[int, float]:
    """Milliseconds per face chip of the ONNX ResNet at batch 1 and 8 (best of ``tries``)."""
    runner = next(r for r in enricher.runners if r.name == "dlib_face_resnet")
    assert isinstance(runner, FaceEmbedRunner), runner
    chips = np.random.default_rng(1).integers(0, 256, (8, 150, 150, 3), dtype=np.uint8)
    timing = {}
    for batch in (1, 8):
        tensor = runner.to_tensor(list(chips[:batch]))
        best = float("inf")
        for _ in range(tries):
            started = time.perf_counter()
            runner.session.run({"input": tensor}, ["embedding"])
            best = min(best, time.perf_counter() - started)
        timing[batch] = round(best * 1000 / batch, 1)
    return timing


def embed_both(
    enricher: Enricher, reference: DlibPipeline, smoke: bool
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every copy of every portrait through both pipelines: (a row per copy, the originals'
    vectors under Darkroom, under dlib)."""
    rows: list[dict[str, Any]] = []
    ours: dict[str, np.ndarray] = {}
    theirs: dict[str, np.ndarray] = {}
    for name, image in originals(SMOKE if smoke else None).items():
        for copy, pixels in copies(image):
            if smoke and copy not in SMOKE_COPIES:
                continue
            mine, dlibs = darkroom_embed(enricher, pixels), reference.embed(pixels)
            row: dict[str, Any] = {"photo": name, "copy": copy}
            if mine is not None and dlibs is not None:
                row["between pipelines"] = round(float(np.linalg.norm(mine - dlibs)), 3)
            if mine is not None and name in ours:
                row["to original, Darkroom"] = round(float(np.linalg.norm(mine - ours[name])), 3)
            if dlibs is not None and name in theirs:
                row["to original, dlib"] = round(float(np.linalg.norm(dlibs - theirs[name])), 3)
            row["found by"] = [
                who for who, v in (("Darkroom", mine), ("dlib", dlibs)) if v is not None
            ]
            if copy == "original":
                assert mine is not None and dlibs is not None, name
                ours[name], theirs[name] = mine, dlibs
            rows.append(row)
            print(row)
    return rows, ours, theirs


def main(argv: Sequence[str] | None = None) -> None:
    """Embed every copy both ways; write results/faces.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, smoke=f"{len(SMOKE)} portraits, each original and mirrored, best of 1")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    settings = load_settings()
    engine = settings.engine.model_copy(
        update={"models": "blazeface,dlib_face_resnet", "variants": "none"}
    )
    enricher = Enricher(engine, ModelRepository.from_settings(settings))
    rows, ours, theirs = embed_both(enricher, DlibPipeline(), args.smoke)
    result = {
        "photos": rows,
        "pairs": {"Darkroom": pair_distances(ours), "dlib": pair_distances(theirs)},
        "between pipelines": spread(
            [r["between pipelines"] for r in rows if "between pipelines" in r]
        ),
        "copy to original": {
            who: spread([r[f"to original, {who}"] for r in rows if f"to original, {who}" in r])
            for who in ("Darkroom", "dlib")
        },
        "chip_ms": chip_ms(enricher, tries=1 if args.smoke else 5),
    }
    enricher.close()
    write_results("faces", result, report(result), out_of(args))


def report(result: dict[str, Any]) -> str:
    """The markdown summary."""
    lines = [
        "# Face embeddings: Darkroom's alignment against dlib's own",
        "",
        "| distance (Euclidean) | Darkroom (BlazeFace landmarks) | dlib (its shape predictor) |",
        "|---|---|---|",
    ]
    for what in ("same person", "different people"):
        cells = [result["pairs"][who][what] for who in ("Darkroom", "dlib")]
        lines.append(
            f"| {what}, original photos | "
            + " | ".join(f"{c['min']}-{c['max']} (mean {c['mean']})" for c in cells)
            + " |"
        )
    cells = [result["copy to original"][who] for who in ("Darkroom", "dlib")]
    lines.append(
        "| a copy to its original | "
        + " | ".join(f"{c['min']}-{c['max']} (mean {c['mean']})" for c in cells)
        + " |"
    )
    between = result["between pipelines"]
    lines += [
        "",
        f"The two pipelines on the same face: {between['min']}-{between['max']} "
        f"(mean {between['mean']}).",
        f"ONNX ResNet: {result['chip_ms'][1]} ms per chip at batch 1, "
        f"{result['chip_ms'][8]} at batch 8.",
        "",
        "| photo | copy | between pipelines | copy to original (Darkroom) | (dlib) | found by |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["photos"]:
        lines.append(
            f"| {row['photo']} | {row['copy']} | {row.get('between pipelines', '-')} | "
            f"{row.get('to original, Darkroom', '-')} | {row.get('to original, dlib', '-')} | "
            f"{', '.join(row['found by'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
