"""People: how well the stream's clustering groups real faces, at three join distances.

    .venv/bin/python -m benchmarks.people        (make bench-people)
    .venv/bin/python -m benchmarks.people --smoke    # seconds: 3 portraits x 3 copies, 1 order

The faces: six real portraits of four people (benchmarks/portraits.py: Obama three times,
Biden, Collins, Hopper) and each one's turned, shrunk, enlarged and mirrored copies, plus a
darker and a JPEG q30 copy, embedded by the engine (BlazeFace + the converted dlib ResNet).
They go through ``PeopleSearch`` exactly as a worker's batches do, one user, in 5 shuffled
orders (the clustering is incremental, so order matters). The report, per join distance (the
merge distance 0.1 below it), over all orders: pairwise precision (two faces in one cluster
are one person) and recall (two faces of one person are in one cluster), and how many persons
(clusters of at least 3 faces) came out against the 4 people. What this set cannot say: how
the clustering does with many people who look alike, children, or thousands of faces.

Writes benchmarks/results/people.json and people.md (not in --smoke), and prints the table.
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from benchmarks import out_of, output_args, write_results
from benchmarks.portraits import PEOPLE, SMOKE, copies, darkroom_embed, originals
from streams.config import load_settings
from streams.engine import Enricher
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.pipeline.faces import Face, PhotoFaces
from streams.pipeline.people import PeoplePolicy, PeopleSearch

JOIN_DISTANCES = (0.4, 0.5, 0.6)
ORDERS = 5
MODEL = "dlib_face_resnet"
SMOKE_VARIANTS = ("original", "mirror", "jpeg q30")
Faces = list[tuple[str, str, np.ndarray]]  # (photo and copy, person, embedding)


class Store:
    """No earlier batches: one search over every face."""

    def people_of(self, user_id: str) -> None:
        return None

    def clusters_of(self, user_id: str, photo_id: str) -> None:
        return None


def variants(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The face benchmark's copies, a darker one and a JPEG q30 one."""
    yield from copies(image)
    yield "darker", (image * 0.6).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    yield "jpeg q30", decoded


def pairwise(truth: Sequence[str], found: Sequence[str]) -> tuple[float, float]:
    """(precision, recall) over every pair of faces."""
    together = true_together = both = 0
    for (a, fa), (b, fb) in itertools.combinations(zip(truth, found, strict=True), 2):
        together += fa == fb
        true_together += a == b
        both += fa == fb and a == b
    return (both / together if together else 1.0), (both / true_together if true_together else 1.0)


def cluster(faces: Faces, join: float, seed: int) -> dict[str, Any]:
    """One order of the faces through the clustering: its quality."""
    order = list(faces)
    random.Random(seed).shuffle(order)
    policy = PeoplePolicy(join_distance=join, merge_distance=join - 0.1, min_faces=3)
    box = [0.0, 0.0, 100.0, 100.0]
    photos = [
        PhotoFaces("u", photo, MODEL, [Face(0, list(map(float, v)), box)]) for photo, _, v in order
    ]
    found = PeopleSearch(Store(), policy).search(photos)
    state = next(iter(found.states.values()))
    # what each face belongs to at the end (a face's cluster may have merged since)
    clusters = [
        state["aliases"].get(a.clusters[0], a.clusters[0]) if a and a.clusters[0] else "?"
        for a in found.assigned
    ]
    precision, recall = pairwise([who for _, who, _ in order], clusters)
    persons = sum(c["count"] >= policy.min_faces for c in state["clusters"].values())
    return {"precision": precision, "recall": recall, "persons": persons}


def embed(smoke: bool) -> tuple[Faces, list[str]]:
    """Every variant of every portrait through the engine: (its faces, the copies without)."""
    configure_logging("WARNING", "console")
    settings = load_settings()
    engine = settings.engine.model_copy(update={"models": f"blazeface,{MODEL}", "variants": "none"})
    enricher = Enricher(engine, ModelRepository.from_settings(settings))
    faces: Faces = []
    missed = []
    for name, image in originals(SMOKE if smoke else None).items():
        for copy, pixels in variants(image):
            if smoke and copy not in SMOKE_VARIANTS:
                continue
            vector = darkroom_embed(enricher, pixels)
            if vector is None:
                missed.append(f"{name} {copy}")
            else:
                faces.append((f"{name} {copy}", PEOPLE[name], vector))
    enricher.close()
    return faces, missed


def main(argv: Sequence[str] | None = None) -> None:
    """Embed every copy once, cluster in every order at every distance; write results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS, help="shuffled orders per distance")
    output_args(
        parser, smoke=f"{len(SMOKE)} portraits x {len(SMOKE_VARIANTS)} copies, 1 order a distance"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders = 1
    faces, missed = embed(args.smoke)
    rows = []
    for join in JOIN_DISTANCES:
        runs = [cluster(faces, join, seed) for seed in range(args.orders)]
        rows.append(
            {
                "join_distance": join,
                "merge_distance": round(join - 0.1, 2),
                **{
                    key: {"min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
                    for key in ("precision", "recall", "persons")
                },
            }
        )
        print(rows[-1])
    result = {
        "faces": len(faces),
        "people": len({who for _, who, _ in faces}),
        "orders": args.orders,
        "no face found": missed,
        "rows": rows,
    }
    write_results("people", result, report(result), out_of(args))


def report(result: dict[str, Any]) -> str:
    """The markdown summary."""

    def span(cell: dict[str, float]) -> str:
        low, high = (f"{v:.3f}" if isinstance(v, float) else str(v) for v in cell.values())
        return low if low == high else f"{low}-{high}"

    lines = [
        "# People: pairwise quality of the clustering on real portraits",
        "",
        f"{result['faces']} faces of {result['people']} people, {result['orders']} orders each "
        f"(no face found in: {', '.join(result['no face found']) or 'none'}).",
        "",
        "| join distance | merge distance | precision | recall | "
        f"persons (of {result['people']}) |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['join_distance']} | {row['merge_distance']} | {span(row['precision'])} | "
            f"{span(row['recall'])} | {span(row['persons'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
