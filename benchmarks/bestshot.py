"""Best shot: does the worker keep the copy a person would keep?

    .venv/bin/python -m benchmarks.bestshot        (make bench-bestshot)
    .venv/bin/python -m benchmarks.bestshot --smoke    # ~20 s: 2 originals and copies, 1 order

Originals: 13 real photos, 6 of them portraits (benchmarks/portraits.py) and 7 of scikit-image's
(no face, or a cat's). Each gets worse copies a library really holds: blurred (Gaussian sigma 2
and 4, a 15-pixel camera shake), halved and quartered, darkened to 30%, overexposed, re-encoded
at JPEG quality 15, and for the photos with a face the face alone blurred; and copies that are
no worse: turned 90 degrees, mirrored. Every photo is then uploaded as a JPEG of quality 92.

1. Pairs: the original's score against each copy's (``bestshot.Shot``), per kind: how often the
   original wins (a copy no worse must not win by more than ``TIE``).
2. Groups: one user uploads every photo, in 5 shuffled orders, through the worker's own
   duplicate search and ranking (``DuplicateSearch`` and ``BestShots`` over an in-memory store,
   batches of 8). Per order: whether each original's copies form one group, and whether its
   best copy (GET /users/{u}/duplicates's first) is the original.

Writes benchmarks/results/bestshot.json and bestshot.md (not in --smoke), and prints them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Any

import cv2
import numpy as np

from benchmarks import out_of, output_args, write_results
from benchmarks.duplicates import SAMPLES, jpeg
from benchmarks.portraits import originals as portraits
from streams.config import Settings, load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.pipeline.bestshot import TIE, BestShots, Shot, best_of, describe, members_of
from streams.pipeline.dedup import DuplicatePolicy, DuplicateSearch
from streams.pipeline.keys import photo_key
from streams.pipeline.memory import MemoryStore
from streams.samples import encode_jpeg, load_photo

Image = np.ndarray[Any, Any]
ORDERS, BATCH = 5, 8
# a smoke run's originals: a cat, and a portrait for the copy with the face alone blurred
SMOKE = ("chelsea", "obama")
Enrichments = dict[str, tuple[str, str, Enriched]]  # photo id -> (original, kind, result)


def shaken(image: Image) -> Image:
    """A horizontal camera shake of 15 pixels."""
    kernel = np.full((1, 15), 1 / 15, np.float32)
    return np.asarray(cv2.filter2D(image, -1, kernel))


def scaled(factor: float) -> Callable[[Image], Image]:
    return lambda i: cv2.resize(i, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


WORSE: dict[str, Callable[[Image], Image]] = {
    "blurred sigma 2": lambda i: cv2.GaussianBlur(i, (0, 0), 2),
    "blurred sigma 4": lambda i: cv2.GaussianBlur(i, (0, 0), 4),
    "camera shake": shaken,
    "halved": scaled(0.5),
    "quartered": scaled(0.25),
    "dark (30%)": lambda i: (i.astype(np.float32) * 0.3).astype(np.uint8),
    "overexposed": lambda i: np.clip(i.astype(np.float32) * 1.8 + 40, 0, 255).astype(np.uint8),
    "jpeg 15": lambda i: jpeg(i, 15),
}
NO_WORSE: dict[str, Callable[[Image], Image]] = {
    "turned 90": lambda i: np.ascontiguousarray(np.rot90(i, 1)),
    "mirrored": lambda i: np.ascontiguousarray(i[:, ::-1]),
}
FACE_BLURRED = "face alone blurred"


def face_blurred(image: Image, face: dict[str, float]) -> Image:
    """``image`` with only the face's box blurred (sigma: a 60th of the box's width, 2 at least)."""
    out = image.copy()
    x1, y1, x2, y2 = (int(face[k]) for k in ("x1", "y1", "x2", "y2"))
    out[y1:y2, x1:x2] = cv2.GaussianBlur(image[y1:y2, x1:x2], (0, 0), max(2.0, (x2 - x1) / 60))
    return out


def blurring_face(face: dict[str, float]) -> Callable[[Image], Image]:
    """The copy maker that blurs this ``face`` (a photo's own box)."""
    return lambda image: face_blurred(image, face)


def photos(names: Collection[str] | None = None) -> dict[str, Image]:
    """The 13 originals (those of ``names``, when given), BGR."""
    found = {name: load_photo(name) for name in SAMPLES if names is None or name in names}
    found.update(portraits(names))
    return found


def enrich_all(settings: Settings, originals: dict[str, Image]) -> Enrichments:
    """Every original and each of its copies enriched once, by the whole engine."""
    engine = settings.engine.model_copy(update={"variants": "none"})
    enricher = Enricher(engine, ModelRepository.from_settings(settings))

    def enrich(photo_id: str, image: Image) -> Enriched:
        (outcome,) = enricher.enrich([PhotoInput(photo_id, encode_jpeg(image, 92))])
        assert isinstance(outcome, Enriched), outcome
        return outcome

    enriched: Enrichments = {}
    try:
        for name, image in originals.items():
            first = enriched[name] = (name, "original", enrich(name, image))
            faces = first[2].fields["faces"] or []
            kinds = {**WORSE, **NO_WORSE}
            if faces:
                box = max(faces, key=lambda f: f["box"]["x2"] - f["box"]["x1"])["box"]
                kinds[FACE_BLURRED] = blurring_face(box)
            for kind, make in kinds.items():
                enriched[f"{name}/{kind}"] = (name, kind, enrich(f"{name}/{kind}", make(image)))
    finally:
        enricher.close()
    return enriched


def main(argv: Sequence[str] | None = None) -> None:
    """Enrich every original and copy once, then rank pairs and groups; write results/bestshot.*."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS, help="shuffled orders of groups")
    output_args(parser, smoke=f"{len(SMOKE)} originals and their copies, 1 order")
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders = 1
    configure_logging("WARNING", "console")
    settings = load_settings()
    enriched = enrich_all(settings, photos(SMOKE if args.smoke else None))
    policy = DuplicatePolicy.from_settings(settings.worker)
    summary = {"pairs": pairs(enriched), "groups": groups(enriched, policy, args.orders)}
    write_results("bestshot", summary, report(summary), out_of(args))


def pairs(enriched: Enrichments) -> dict[str, Any]:
    """Per kind of copy: how often the original scores higher (a worse copy) or the copy does
    not score more than TIE higher (a copy no worse), and the scores' mean difference."""
    shots = {pid: Shot.of(result.fields) for pid, (_, _, result) in enriched.items()}
    per_kind: dict[str, dict[str, Any]] = {}
    for pid, (name, kind, _) in enriched.items():
        if kind == "original":
            continue
        ours, theirs = shots[name], shots[pid]
        assert ours is not None and theirs is not None
        entry = per_kind.setdefault(kind, {"photos": 0, "kept": 0, "differences": [], "lost": []})
        entry["photos"] += 1
        worse = kind not in NO_WORSE
        kept = ours.score > theirs.score if worse else theirs.score <= ours.score + TIE
        entry["kept"] += kept
        entry["differences"].append(ours.score - theirs.score)
        if not kept:
            entry["lost"].append(name)
    for entry in per_kind.values():
        entry["mean_difference"] = round(statistics.fmean(entry.pop("differences")), 4)
    faces: dict[str, list[float]] = {"original": [], FACE_BLURRED: []}
    for _, kind, result in enriched.values():
        if kind in faces and result.fields["faces"]:
            largest = max(result.fields["faces"], key=lambda f: f["box"]["x2"] - f["box"]["x1"])
            faces[kind].append(largest["sharpness"])
    seen = {kind: [round(min(v), 3), round(max(v), 3)] for kind, v in faces.items()}
    return {"per_kind": per_kind, "face_sharpness_seen": seen}


def groups(enriched: Enrichments, policy: DuplicatePolicy, orders: int = ORDERS) -> dict[str, Any]:
    """Every photo through DuplicateSearch and BestShots, in ``orders`` shuffled orders."""
    originals = sorted({name for name, _, _ in enriched.values()})
    whole, best, seconds = Counter[str](), Counter[str](), []
    wrong: list[str] = []
    for order in range(orders):
        ids = list(enriched)
        random.Random(order).shuffle(ids)
        store = MemoryStore()
        search, ranking = DuplicateSearch(store, policy), BestShots(store)
        for start in range(0, len(ids), BATCH):
            batch = [  # uploaded in the order shuffled
                ("u", pid, f"{start + i:06d}", enriched[pid][2])
                for i, pid in enumerate(ids[start : start + BATCH])
            ]
            found = search.search(batch)
            started = time.perf_counter()
            ranked = ranking.rank(batch, found)
            seconds.append((time.perf_counter() - started) / len(batch))
            store.record([(pid, result) for _, pid, _, result in batch], found, ranked)
        for name in originals:
            mine = {pid for pid, (of, _, _) in enriched.items() if of == name}
            of_group = {g for pid in mine for g in [store.group_of("u", pid)]}
            if len(of_group) == 1:
                (group_id,) = of_group
                members = store.group(photo_key("u", group_id))
                if members is not None and {m for m, _ in members_of(members)} == mine:
                    whole[name] += 1
                    chosen = members_of(members)[best_of(members_of(members))][0]
                    if chosen == name or enriched[chosen][1] in NO_WORSE:
                        best[name] += 1
                    else:
                        why = describe(group_id, members)["reason"]
                        wrong.append(f"order {order}: {name}: {why}, kept {chosen}")
    return {
        "orders": orders,
        "originals": len(originals),
        "whole_groups": sum(whole.values()),
        "best_is_original": sum(best.values()),
        "of": orders * len(originals),
        "not_whole": sorted(n for n in originals if whole[n] < orders),
        "wrong_best": wrong,
        "rank_ms_per_photo": round(1000 * statistics.fmean(seconds), 3),
    }


def report(summary: dict[str, Any]) -> str:
    """The markdown summary."""
    pairs_, groups_ = summary["pairs"], summary["groups"]
    lines = [
        "# Best shot: the original against its copies",
        "",
        "| copy | photos | original kept | mean score difference | lost on |",
        "|---|---|---|---|---|",
    ]
    for kind, entry in pairs_["per_kind"].items():
        rule = "" if kind not in NO_WORSE else " (no worse: not overtaken)"
        lines.append(
            f"| {kind}{rule} | {entry['photos']} | {entry['kept']} | "
            f"{entry['mean_difference']:+.3f} | {', '.join(entry['lost']) or '-'} |"
        )
    lines += [
        "",
        "Sharpness of the largest face, lowest and highest: "
        + ", ".join(f"{kind} {v}" for kind, v in pairs_["face_sharpness_seen"].items())
        + ".",
        "",
        f"Groups, {groups_['orders']} shuffled orders x {groups_['originals']} originals: "
        f"{groups_['whole_groups']} of {groups_['of']} whole (every copy in its original's group "
        f"and nothing else), best copy = the original (or a copy no worse) in "
        f"**{groups_['best_is_original']}** of "
        f"{groups_['of']}; ranking {groups_['rank_ms_per_photo']} ms a photo.",
        "",
        f"Not always whole: {', '.join(groups_['not_whole']) or 'none'}.",
        "",
        "Another copy kept:",
        "",
        *([f"- {w}" for w in groups_["wrong_best"]] or ["- none"]),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
