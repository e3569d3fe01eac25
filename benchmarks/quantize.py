"""Would 8-bit embeddings cost quality? Recall@20 of similar photos, and the duplicate and people
decisions, with int8 embeddings against the float16 ones the worker stores.

    .venv/bin/python -m benchmarks.quantize     # ~2 min on 2 cores
    .venv/bin/python -m benchmarks.quantize --smoke    # ~10 s: that it runs (1 copy each)

The photos: the 16 sample photos, each with 30 copies (crops of 60-95%, scaled, brighter or
darker, mirrored, turned a few degrees, JPEG quality 40-90), embedded by the engine
(MobileNetV2, 1280 dims): 496 embeddings in tight groups, which is the hard case for a top-20
(most neighbours of a photo are its own copies, ranked by small differences). The faces: the
six portraits of four people and their copies (benchmarks/portraits.py), embedded by the engine
(128 dims).

The 8-bit form: each vector scaled by its own largest magnitude to -127..127 and rounded
(1280 bytes and a float32 scale: 1,284 bytes against float16's 2,560). Measured: recall@20 (the
share of float16's 20 nearest, by cosine, that int8's 20 nearest hold, over every photo as the
query); the embedding rule of the duplicate search (cosine >= ``duplicate_min_similarity``,
0.75, for photos indexed without a DCT block) and the people rules (a face joins within 0.5,
clusters merge within 0.4: Euclidean) as pairs that change side.

Writes benchmarks/results/quantize.json and quantize.md (not in --smoke).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from benchmarks import out_of, output_args, ran_on, write_results
from benchmarks.engine import machine
from benchmarks.portraits import copies as portrait_copies
from benchmarks.portraits import darkroom_embed, originals
from streams.config import load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.logs import configure_logging
from streams.samples import PHOTOS, encode_jpeg, load_photo

COPIES, K = 30, 20
SMOKE_COPIES = 1  # --smoke: 32 photo embeddings, still more than K + 1
SMOKE_FACES = 1  # --smoke: the portraits themselves
DUPLICATE_MIN_SIMILARITY, JOIN, MERGE = 0.75, 0.5, 0.4
GOAL_RECALL = 0.99
Vectors = np.ndarray[Any, np.dtype[np.float32]]


def int8(vectors: Vectors) -> Vectors:
    """Each row through the 8-bit form and back (symmetric, one scale per row)."""
    scale = np.abs(vectors).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.asarray((np.round(vectors / scale).astype(np.int8) * scale), dtype=np.float32)


def float16(vectors: Vectors) -> Vectors:
    """Each row as the worker stores it."""
    return vectors.astype(np.float16).astype(np.float32)


def variants(
    image: np.ndarray, rng: np.random.Generator, copies: int = COPIES
) -> Iterator[np.ndarray]:
    """``copies`` copies of a photo, each changed a little in a random way."""
    height, width = image.shape[:2]
    for _ in range(copies):
        copy = image
        share = rng.uniform(0.6, 0.95)
        h, w = int(height * share), int(width * share)
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        copy = copy[y : y + h, x : x + w]
        copy = cv2.resize(copy, None, fx=rng.uniform(0.5, 1.5), fy=rng.uniform(0.5, 1.5))
        copy = cv2.convertScaleAbs(copy, alpha=rng.uniform(0.7, 1.3), beta=rng.uniform(-30, 30))
        if rng.random() < 0.5:
            copy = copy[:, ::-1]
        turn = cv2.getRotationMatrix2D(
            (copy.shape[1] / 2, copy.shape[0] / 2), rng.uniform(-8, 8), 1.0
        )
        copy = cv2.warpAffine(copy, turn, (copy.shape[1], copy.shape[0]))
        quality = int(rng.integers(40, 91))
        encoded = encode_jpeg(np.asarray(copy, dtype=np.uint8), quality)
        decoded = cv2.imdecode(np.frombuffer(encoded, np.uint8), 1)
        yield np.ascontiguousarray(decoded)


def photo_embeddings(enricher: Enricher, copies: int = COPIES) -> Vectors:
    rng = np.random.default_rng(11)
    inputs = []
    for name in PHOTOS:
        image = load_photo(name)
        inputs.append(PhotoInput(name, encode_jpeg(image)))
        for i, copy in enumerate(variants(image, rng, copies)):
            inputs.append(PhotoInput(f"{name}-{i}", encode_jpeg(copy)))
    found = []
    for start in range(0, len(inputs), 32):
        for result in enricher.enrich(inputs[start : start + 32]):
            assert isinstance(result, Enriched), result
            found.append(result.fields["embedding"])
    vectors = np.asarray(found, dtype=np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def face_embeddings(enricher: Enricher, copies: int | None = None) -> Vectors:
    """The portraits' and their copies' faces (the first ``copies`` of each; None: all)."""
    found = []
    for image in originals().values():
        for _name, copy in itertools.islice(portrait_copies(image), copies):
            vector = darkroom_embed(enricher, copy)
            if vector is not None:
                found.append(vector)
    return np.asarray(found, dtype=np.float32)


def recall_at_k(exact: Vectors, approx: Vectors, k: int) -> tuple[float, float]:
    """Mean and lowest share of ``exact``'s k nearest (cosine, the query left out) among
    ``approx``'s k nearest."""
    shares = []
    for matrix in (exact, approx):
        scores = matrix @ matrix.T
        np.fill_diagonal(scores, -np.inf)
        shares.append(np.argsort(-scores, axis=1, kind="stable")[:, :k])
    found = [len(set(a) & set(b)) / k for a, b in zip(shares[0], shares[1], strict=True)]
    return float(np.mean(found)), float(np.min(found))


def flips_cosine(exact: Vectors, approx: Vectors, threshold: float) -> tuple[int, int, int]:
    """(pairs that change side of ``threshold``, pairs within 0.02 of it, pairs)."""
    a, b = exact @ exact.T, approx @ approx.T
    upper = np.triu_indices(len(exact), 1)
    a, b = a[upper], b[upper]
    changed = int(np.sum((a >= threshold) != (b >= threshold)))
    return changed, int(np.sum(np.abs(a - threshold) < 0.02)), len(a)


def flips_distance(exact: Vectors, approx: Vectors, threshold: float) -> tuple[int, int, int]:
    """As ``flips_cosine`` for a Euclidean ``threshold``."""

    def distances(m: Vectors) -> Vectors:
        return np.asarray(np.linalg.norm(m[:, None, :] - m[None, :, :], axis=2))

    upper = np.triu_indices(len(exact), 1)
    a, b = distances(exact)[upper], distances(approx)[upper]
    changed = int(np.sum((a <= threshold) != (b <= threshold)))
    return changed, int(np.sum(np.abs(a - threshold) < 0.02)), len(a)


def run(copies: int = COPIES, face_copies: int | None = None) -> dict[str, Any]:
    """``copies`` of each sample photo; each portrait's first ``face_copies`` versions, the
    original first (None: all)."""
    enricher = Enricher.from_settings(load_settings())
    try:
        photos = photo_embeddings(enricher, copies)
        faces = face_embeddings(enricher, face_copies)
    finally:
        enricher.close()
    half, eight = float16(photos), int8(photos)
    mean, lowest = recall_at_k(half, eight, K)
    # the similar-photo search normalises rows after unpacking (streams/pipeline/similar.py)
    normed = eight / np.linalg.norm(eight, axis=1, keepdims=True)
    mean_normed, lowest_normed = recall_at_k(half, normed, K)
    duplicate = flips_cosine(half, eight, DUPLICATE_MIN_SIMILARITY)
    face_half, face_eight = float16(faces), int8(faces)
    width = photos.shape[1]
    return {
        "machine": machine(),
        "photos": len(photos),
        "copies": copies,
        "faces": len(faces),
        "k": K,
        "recall_at_k": {"mean": round(mean_normed, 4), "lowest": round(lowest_normed, 4)},
        "recall_at_k_unnormalised": {"mean": round(mean, 4), "lowest": round(lowest, 4)},
        "duplicate_rule_flips": _flips(duplicate),
        "join_flips": _flips(flips_distance(face_half, face_eight, JOIN)),
        "merge_flips": _flips(flips_distance(face_half, face_eight, MERGE)),
        "bytes": {"float16": 2 * width, "int8": width + 4},
        "adopt": mean_normed >= GOAL_RECALL,
    }


def _flips(counts: tuple[int, int, int]) -> dict[str, int]:
    return dict(zip(("changed", "near", "pairs"), counts, strict=True))


def report(result: dict[str, Any]) -> str:
    r = result["recall_at_k"]
    lines = [
        "# 8-bit embeddings against float16",
        "",
        ran_on("quantize", result["machine"])
        + f": {result['photos']} photo embeddings (16 photos and "
        f"{result['copies']} copies each), {result['faces']} face embeddings.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| recall@{result['k']} of similar photos (mean, lowest query) | {r['mean']}, "
        f"{r['lowest']} (goal >= {GOAL_RECALL}) |",
    ]
    for name, label in (
        ("duplicate_rule_flips", f"duplicate rule (cosine >= {DUPLICATE_MIN_SIMILARITY})"),
        ("join_flips", f"a face joins (distance <= {JOIN})"),
        ("merge_flips", f"clusters merge (distance <= {MERGE})"),
    ):
        f = result[name]
        lines.append(
            f"| {label}: pairs that change side | {f['changed']} of {f['pairs']:,} "
            f"({f['near']} within 0.02 of the threshold) |"
        )
    b = result["bytes"]
    lines += [
        f"| bytes per photo embedding | {b['float16']:,} (float16) -> {b['int8']:,} (int8) |",
        "",
        f"Adopt (recall@{result['k']} >= {GOAL_RECALL}): {'yes' if result['adopt'] else 'no'}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, smoke="each photo and 1 copy of it, the portraits without copies")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    # --smoke: every measure on a few embeddings; the recall means nothing at this size
    result = run(SMOKE_COPIES, SMOKE_FACES) if args.smoke else run()
    write_results("quantize", result, report(result), out_of(args))


if __name__ == "__main__":
    main()
