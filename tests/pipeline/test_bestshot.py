"""Best shot: the ranking of near-duplicate copies, and the groups it keeps, without Kafka or
models (the photos' model-free measures are real)."""

from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np
import pytest

from streams.engine.results import Enriched
from streams.imaging.decode import Decoder
from streams.imaging.features import extract_features
from streams.pipeline import bestshot
from streams.pipeline.bestshot import BestShots, Shot
from streams.pipeline.dedup import DuplicatePolicy, DuplicateSearch
from streams.pipeline.keys import entry_key, photo_key, split_entry
from streams.pipeline.memory import MemoryStore
from streams.samples import encode_jpeg, load_photo

UPLOADED = itertools.count()  # each photo's upload time, as the index orders them
POLICY = DuplicatePolicy(max_distance=20, min_similarity=0.75, max_photos=100)
CHELSEA = load_photo("chelsea")


def enriched(photo_id: str, image: np.ndarray, **fields: Any) -> Enriched:
    """A photo as the engine hands it on, its model-free fields only (plus ``fields``)."""
    decoded = Decoder(max_pixels=10**8, min_side=960).decode(encode_jpeg(image, 92))
    found, produced_by, hashes, block = extract_features(decoded, blur_threshold=50.0)
    found.update(width=decoded.width, height=decoded.height, **fields)
    return Enriched(photo_id, found, produced_by, {}, hashes, block)


def shot(image: np.ndarray) -> Shot:
    found = Shot.of(enriched("p", image).fields)
    assert found is not None
    return found


@pytest.mark.parametrize(
    "worse",
    [
        pytest.param(lambda i: cv2.GaussianBlur(i, (0, 0), 2), id="blurred"),
        pytest.param(lambda i: (i * 0.3).astype(np.uint8), id="dark"),
        pytest.param(lambda i: np.clip(i * 1.8 + 40, 0, 255).astype(np.uint8), id="overexposed"),
        pytest.param(lambda i: cv2.resize(i, None, fx=0.25, fy=0.25), id="quartered"),
    ],
)
def test_the_original_scores_above_a_worse_copy(worse: Any) -> None:
    assert shot(CHELSEA).score > shot(worse(CHELSEA.astype(np.float32)).astype(np.uint8)).score


def test_a_brighter_copy_is_not_a_sharper_one() -> None:
    """Brightening multiplies the Laplacian's variance; detail is over the luma's variance."""
    bright = shot(np.clip(CHELSEA.astype(np.float32) * 1.3, 0, 255).astype(np.uint8))
    original = shot(CHELSEA)
    assert bright.sharpness > 1.3 * original.sharpness
    assert bright.detail == pytest.approx(original.detail, rel=0.1)


def test_faces_in_focus_count_only_from_the_threshold() -> None:
    fields = enriched("p", CHELSEA).fields
    sharp, soft = bestshot.FACE_IN_FOCUS, bestshot.FACE_IN_FOCUS * 0.99
    with_faces = {**fields, "faces": [{"sharpness": sharp}, {"sharpness": soft}, {}]}
    found = Shot.of(with_faces)
    assert found is not None and found.faces == 3 and found.faces_in_focus == 1
    assert found.score > shot(CHELSEA).score


def test_a_later_copy_takes_over_only_by_more_than_the_tie() -> None:
    first = shot(CHELSEA)
    just_better = Shot(**{**first.to_json(), "megapixels": first.megapixels * 1.01})
    assert 0 < just_better.score - first.score < bestshot.TIE
    assert bestshot.best_of([("a", first), ("b", just_better)]) == 0
    much_better = Shot(**{**first.to_json(), "faces": 1, "faces_in_focus": 1})
    assert bestshot.best_of([("a", first), ("b", just_better), ("c", much_better)]) == 2


def test_the_reason_names_what_differs_most() -> None:
    original = shot(CHELSEA)
    blurred = shot(cv2.GaussianBlur(CHELSEA, (0, 0), 3))
    assert bestshot.reason(original, blurred).startswith("sharper (detail ")
    bigger = Shot(**{**original.to_json(), "megapixels": 12.0})
    assert bestshot.reason(bigger, original) == "more pixels (12 MP vs 0.135 MP)"
    assert bestshot.reason(original, original) == "as good (scores within 0.01), and earlier"


def run(store: MemoryStore, *photos: Enriched, user: str = "u") -> list[dict[str, Any] | None]:
    """One batch through the worker's two steps, recorded as the worker records it; each
    photo's BestShot record, with its duplicate_of's photo id under "duplicate_of"."""
    batch = [(user, p.photo_id, f"{next(UPLOADED):08d}", p) for p in photos]  # in order
    found = DuplicateSearch(store, POLICY).search(batch)
    ranked = BestShots(store).rank(batch, found)
    store.record([(p.photo_id, p) for p in photos], found, ranked)
    return [
        None if record is None else {**record, "duplicate_of": (link or {}).get("photo_id")}
        for record, link in zip(ranked.best_shot, found.duplicate_of, strict=True)
    ]


def test_a_sharper_copy_after_a_blurred_one_becomes_the_best_and_says_so() -> None:
    store = MemoryStore()
    (alone,) = run(store, enriched("blurred", cv2.GaussianBlur(CHELSEA, (0, 0), 2)))
    assert alone is not None and alone["best"] and alone["group_size"] == 1
    assert alone["group_id"] == "blurred" and store.groups == {}  # a group of one is not kept
    (later,) = run(store, enriched("sharp", CHELSEA))
    assert later == {
        "duplicate_of": "blurred",
        "group_id": "blurred",  # the group's first photo names it
        "best": True,
        "best_photo_id": "sharp",
        "score": pytest.approx(shot(CHELSEA).score),
        "group_size": 2,
    }
    listed = bestshot.describe("blurred", store.groups[photo_key("u", "blurred")])
    assert [p["photo_id"] for p in listed["photos"]] == ["sharp", "blurred"]
    assert listed["best"] == "sharp" and listed["reason"].startswith("sharper")
    assert [p["behind_best"] for p in listed["photos"]] == [None, listed["reason"]]
    (worse,) = run(store, enriched("small", cv2.resize(CHELSEA, None, fx=0.3, fy=0.3)))
    assert worse is not None and not worse["best"] and worse["best_photo_id"] == "sharp"
    assert worse["group_id"] == "blurred" and worse["group_size"] == 3


def test_copies_point_at_the_first_photo_and_a_replayed_original_stays_first() -> None:
    store = MemoryStore()
    cropped = np.ascontiguousarray(CHELSEA[12:-12, 18:-18])
    first, copy = enriched("first", CHELSEA), enriched("copy", cropped)
    run(store, first, copy)
    (again,) = run(store, enriched("third", cropped.copy()))  # the copy's twin: nearer to it
    assert again is not None and again["group_id"] == "first" and again["group_size"] == 3
    assert again["duplicate_of"] == "first"  # the first photo, near enough, before any copy
    assert store.groups_of == {"first": "first", "copy": "first", "third": "first"}
    before = dict(store.groups)
    (replayed,) = run(store, first)  # the original again (a replay): not a copy of its copies
    assert replayed is not None and replayed["group_id"] == "first"
    assert replayed["duplicate_of"] is None
    assert store.groups == before  # the same members, counted once


def test_a_photo_that_no_longer_matches_leaves_its_group() -> None:
    store = MemoryStore()
    run(store, enriched("first", CHELSEA), enriched("copy", CHELSEA[:, ::-1].copy()))
    assert store.group(photo_key("u", "first")) is not None
    (moved,) = run(store, enriched("copy", load_photo("coffee")))  # re-enriched: another photo
    assert moved is not None and moved["group_id"] == "copy"
    assert store.group(photo_key("u", "first")) is None  # one photo left: no group


def test_a_copy_joining_or_leaving_a_large_group_writes_its_own_row_alone() -> None:
    base = shot(CHELSEA)
    group = None
    for i in range(300):
        better = Shot(**{**base.to_json(), "megapixels": base.megapixels * (1 + i / 100)})
        group = bestshot.with_member(group, "first", base, f"p{i}", better, f"t{i:04d}")
    assert group is not None and bestshot.size(group) == 301
    rows = bestshot.rows_of("u", "first", group)
    assert len(rows) == 301
    stored = [(split_entry(k)[2], v) for k, v in reversed(rows.items())]
    assert bestshot.from_rows("first", stored) == group  # in the order the ranking reads
    joined = bestshot.with_member(group, "first", base, "late", base, "t9999")
    assert list(bestshot.changed_rows("u", "first", group, joined)) == [
        entry_key("u", "first", "late")
    ]
    left = bestshot.without_member(joined, "p7")
    assert bestshot.changed_rows("u", "first", joined, left) == {
        entry_key("u", "first", "p7"): None
    }
    assert left is not None and left["members"][0][0] == "first"  # the first stays first
    heir, reformed = bestshot.reformed(left)
    assert heir == "p0" and reformed is not None and bestshot.size(reformed) == 300
    assert reformed["members"][0] == ["p0", group["members"][1][1], None]
    pair = {"members": group["members"][:2]}
    assert bestshot.without_member(pair, "nobody") == pair
    assert bestshot.without_member(pair, pair["members"][1][0]) is None
