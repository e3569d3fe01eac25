"""Near-duplicates: precision and recall of the worker's duplicate search on a generated set.

    .venv/bin/python -m benchmarks.duplicates        (make bench-duplicates)
    .venv/bin/python -m benchmarks.duplicates --smoke    # seconds: 3 originals, every kind of copy

Originals: 17 real photos (scikit-image's and the portraits of streams/samples.py). Positives:
each original's copies a photo library really holds: turned 90/180/270 degrees, mirrored, cropped
by 10%, halved, re-encoded at JPEG quality 30, 60 and 95, colour-shifted, and turned 90 then
re-encoded at 60. Negatives: the other originals, and burst-like near-misses: the same scene a
moment later, made by panning the frame 20% and zooming 10%.

One user uploads the 17 originals (none may match another); then each near-miss and each copy
is searched alone against them (the worker's own search, streams.pipeline.dedup.DuplicateSearch,
with the worker's default policy, over an in-memory store). A copy is found when
``duplicate_of`` names its own original; naming another photo is a false match, and so is any
match for a near-miss.

Writes benchmarks/results/duplicates.json and duplicates.md (not in --smoke), and prints them.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any

import cv2
import numpy as np

from benchmarks import out_of, output_args, write_results
from streams.config import Settings, load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.imaging.phash import block_correlation, dihedral_block
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.pipeline.dedup import DuplicatePolicy, DuplicateSearch
from streams.pipeline.memory import MemoryStore
from streams.samples import PORTRAITS, encode_jpeg, load_photo

SKIMAGE = ("immunohistochemistry", "brick", "grass", "colorwheel", "clock", "retina")
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera", "page")
SMOKE = ("chelsea", "coffee", "brick")  # a smoke run's originals: two in colour, one grey
Image = np.ndarray[Any, Any]


def originals(names: Collection[str] | None = None) -> dict[str, Image]:
    """The 17 originals (those of ``names``, when given), BGR."""
    import skimage.data

    def wanted(group: Sequence[str]) -> list[str]:
        return [name for name in group if names is None or name in names]

    found = {name: load_photo(name) for name in wanted((*SAMPLES, *PORTRAITS))}
    for name in wanted(SKIMAGE):
        image = getattr(skimage.data, name)()
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
        found[name] = np.ascontiguousarray(image)
    return found


def jpeg(image: Image, quality: int) -> Image:
    """``image`` through a JPEG at ``quality``."""
    data = np.frombuffer(encode_jpeg(image, quality=quality), np.uint8)
    decoded: Image = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR))
    return decoded


def shifted_colour(image: Image) -> Image:
    """Warmer and brighter, as an edit or another white balance would make it."""
    out = image.astype(np.float32) * np.array([0.9, 1.0, 1.12]) + 12
    shifted: Image = np.clip(out, 0, 255).astype(np.uint8)
    return shifted


def cropped(image: Image, keep: float) -> Image:
    """The centre ``keep`` of each side."""
    height, width = image.shape[:2]
    dy, dx = round(height * (1 - keep) / 2), round(width * (1 - keep) / 2)
    return np.ascontiguousarray(image[dy : height - dy, dx : width - dx])


def burst(image: Image) -> Image:
    """The same scene a moment later: the frame panned by 20% of its width and zoomed 10%."""
    height, width = image.shape[:2]
    move = np.array([[1.1, 0, -0.25 * width], [0, 1.1, -0.05 * height]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image, move, (width, height), borderMode=cv2.BORDER_REFLECT))


COPIES: dict[str, Callable[[Image], Image]] = {
    "turned 90": lambda i: np.ascontiguousarray(np.rot90(i, 1)),
    "turned 180": lambda i: np.ascontiguousarray(np.rot90(i, 2)),
    "turned 270": lambda i: np.ascontiguousarray(np.rot90(i, 3)),
    "mirrored": lambda i: np.ascontiguousarray(i[:, ::-1]),
    "cropped 10%": lambda i: cropped(i, 0.9),
    "halved": lambda i: cv2.resize(i, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "jpeg 30": lambda i: jpeg(i, 30),
    "jpeg 60": lambda i: jpeg(i, 60),
    "jpeg 95": lambda i: jpeg(i, 95),
    "colour shift": shifted_colour,
    "turned 90, jpeg 60": lambda i: jpeg(np.ascontiguousarray(np.rot90(i, 1)), 60),
}
NEAR_MISSES: dict[str, Callable[[Image], Image]] = {"burst": burst}


def to_original(original: Enriched, copy: Enriched) -> dict[str, Any]:
    """What the search compares: the closest of the copy's 8 hashes to the original's, and the
    cosine of their embeddings."""
    stored = int(original.fields["phash"], 16)
    distances = [(variant ^ stored).bit_count() for variant in copy.phash_variants]
    turn = int(np.argmin(distances))
    cosine = float(np.dot(original.fields["embedding"], copy.fields["embedding"]))
    found = {"hash_distance": distances[turn], "similarity": round(cosine, 3)}
    if copy.dct_block:
        mine = dihedral_block(np.reshape(copy.dct_block, (8, 8)), turn)
        theirs = np.reshape(original.dct_block, (8, 8))
        found["block_correlation"] = round(block_correlation(mine, theirs), 3)
    return found


def row(
    name: str,
    kind: str,
    duplicate: dict[str, Any] | None,
    expected: str | None,
    original: Enriched,
    copy: Enriched,
) -> dict[str, Any]:
    """One searched photo: what it should find, what it found, and how close it was."""
    return {
        "photo": name,
        "kind": kind,
        "expected": expected,
        "found": duplicate["photo_id"] if duplicate else None,
        "correlation": duplicate.get("correlation") if duplicate else None,
        **to_original(original, copy),
    }


RULES = {
    "now": True,  # each photo's DCT block stored: candidates by hash, decided by correlation
    "before": False,  # no block stored: the old rule, hash within 10 bits and cosine >= 0.75
}


def measure(
    firsts: dict[str, Enriched],
    copies: list[tuple[str, str, Enriched]],
    policy: DuplicatePolicy,
    keep_blocks: bool,
) -> list[dict[str, Any]]:
    """Index the originals, then search each copy and near-miss alone against them."""
    store = MemoryStore()
    search = DuplicateSearch(store, policy)
    rows = []
    for name, first in firsts.items():
        found = search.search([("u", name, "0", first)])  # every original: one upload time
        store.indexes.update(found.indexes)
        store.embeddings.update(found.embeddings)
        if keep_blocks:
            store.blocks.update(found.blocks)
        rows.append(row(name, "original", found.duplicate_of[0], None, first, first))
    for name, kind, copy in copies:
        (duplicate,) = search.search([("u", f"{name}/{kind}", "1", copy)]).duplicate_of
        expected = name if kind in COPIES else None
        rows.append(row(name, kind, duplicate, expected, firsts[name], copy))
    return rows


def enrich_all(
    settings: Settings, photos: dict[str, Image]
) -> tuple[dict[str, Enriched], list[tuple[str, str, Enriched]]]:
    """Every original, and every copy and near-miss of each, enriched once: (name -> original,
    [(original's name, kind, copy)])."""
    engine = settings.engine.model_copy(update={"models": "mobilenet_v2", "variants": "none"})
    enricher = Enricher(engine, ModelRepository.from_settings(settings))

    def enrich(photo_id: str, image: Image) -> Enriched:
        (outcome,) = enricher.enrich([PhotoInput(photo_id, encode_jpeg(image, 95))])
        assert isinstance(outcome, Enriched), outcome
        return outcome

    try:
        firsts = {name: enrich(name, image) for name, image in photos.items()}
        copies = [
            (name, kind, enrich(f"{name}/{kind}", make(image)))
            for name, image in photos.items()
            for kind, make in {**COPIES, **NEAR_MISSES}.items()
        ]
    finally:
        enricher.close()
    return firsts, copies


def main(argv: Sequence[str] | None = None) -> None:
    """Enrich every original, copy and near-miss once; search them under both rules; write
    results/duplicates.*."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, smoke=f"{len(SMOKE)} originals and their copies and near-misses")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    settings = load_settings()
    policy = DuplicatePolicy.from_settings(settings.worker)
    firsts, copies = enrich_all(settings, originals(SMOKE if args.smoke else None))
    summary = {
        rule: summarise(measure(firsts, copies, policy, keep), policy, keep)
        for rule, keep in RULES.items()
    }
    # the other originals a search would weigh: within the hash distance, how alike at most
    pairs = [to_original(a, b) for a, b in itertools.combinations(firsts.values(), 2)]
    summary["now"]["margins"]["other originals within the hash distance, highest correlation"] = (
        max(
            (p["block_correlation"] for p in pairs if p["hash_distance"] <= policy.max_distance),
            default=None,
        )
    )
    write_results("duplicates", summary, report(summary), out_of(args))


def summarise(rows: list[dict[str, Any]], policy: DuplicatePolicy, blocks: bool) -> dict[str, Any]:
    """Precision and recall overall and per kind of copy."""
    positives = [r for r in rows if r["expected"] is not None]
    true = [r for r in positives if r["found"] == r["expected"]]
    false = [r for r in rows if r["found"] is not None and r not in true]
    flagged = len(true) + len(false)
    per_kind = {}
    for kind in (*COPIES, *NEAR_MISSES):
        of_kind = [r for r in rows if r["kind"] == kind]
        per_kind[kind] = {
            "photos": len(of_kind),
            "found" if kind in COPIES else "falsely matched": sum(
                (r in true) if kind in COPIES else (r["found"] is not None) for r in of_kind
            ),
        }
    return {
        "rule": (
            f"hash within {policy.max_distance} bits, DCT-block correlation >= "
            f"{policy.min_correlation}"
            if blocks
            else f"hash within 10 bits, embedding cosine >= {policy.min_similarity}"
        ),
        "positives": len(positives),
        "recall": round(len(true) / len(positives), 4),
        "precision": round(len(true) / flagged, 4) if flagged else None,
        "false_matches": len(false),
        "per_kind": per_kind,
        "margins": {
            "copies within the hash distance, lowest correlation to their original": min(
                (
                    r["block_correlation"]
                    for r in positives
                    if "block_correlation" in r and r["hash_distance"] <= policy.max_distance
                ),
                default=None,
            ),
            "near-misses within the hash distance, highest correlation": max(
                (
                    r["block_correlation"]
                    for r in rows
                    if r["kind"] in NEAR_MISSES
                    and "block_correlation" in r
                    and r["hash_distance"] <= policy.max_distance
                ),
                default=None,
            ),
        },
        "misses": [r for r in positives if r not in true],
        "false": false,
    }


def report(summary: dict[str, dict[str, Any]]) -> str:
    """The markdown summary: both rules side by side, then each one's misses."""
    now, before = summary["now"], summary["before"]
    lines = [
        "# Near-duplicates: precision and recall on a generated set",
        "",
        f"- now: {now['rule']}: recall **{now['recall']}**, precision **{now['precision']}**",
        f"- before: {before['rule']}: recall **{before['recall']}**, precision "
        f"**{before['precision']}**",
        "",
        f"{now['positives']} copies; negatives: the other originals and "
        f"{now['per_kind']['burst']['photos']} near-misses.",
        "",
        "| kind | photos | found now | found before |",
        "|---|---|---|---|",
    ]
    for kind, counts in now["per_kind"].items():
        key = "found" if "found" in counts else "falsely matched"
        label = kind if key == "found" else f"{kind} (falsely matched)"
        lines.append(
            f"| {label} | {counts['photos']} | {counts[key]} | {before['per_kind'][kind][key]} |"
        )
    for what, value in now["margins"].items():
        lines += ["", f"{what[0].upper()}{what[1:]}: {value}."]
    for rule, result in summary.items():
        lines += ["", f"## {rule}: false matches", ""]
        lines += [
            f"- {f['photo']} {f['kind']}: matched {f['found']} (correlation {f['correlation']})"
            for f in result["false"]
        ] or ["- none"]
        lines += ["", f"## {rule}: missed copies (to their original)", ""]
        lines += [
            f"- {m['photo']} {m['kind']}: found {m['found']}; hash distance "
            f"{m['hash_distance']}, embedding cosine {m['similarity']}, block correlation "
            f"{m.get('block_correlation')}"
            for m in result["misses"]
        ] or ["- none"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
