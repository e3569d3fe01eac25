"""A person's cover: the face that shows them best (size, sharpness, pose), its square with a
margin inside the photo, and the preview to show it from (streams/pipeline/covers.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from streams.engine import Enricher
from streams.pipeline import covers, people_state
from streams.pipeline.bestshot import FACE_IN_FOCUS
from streams.pipeline.faces import Face, Given, PhotoFaces, faces_of
from streams.pipeline.keys import entry_key
from streams.pipeline.outputs import RawMessage
from streams.pipeline.people import PeoplePolicy, PeopleSearch
from streams.samples import encode_jpeg, load_photo
from tests.pipeline.test_assets import with_assets
from tests.pipeline.test_batch import decoded, upload_bytes

MODEL = "dlib_face_resnet@1"
FRONTAL = [{"x": 40.0, "y": 50.0}, {"x": 60.0, "y": 50.0}, {"x": 50.0, "y": 60.0}]
BOX = [30.0, 30.0, 70.0, 80.0]


def landmarks(nose_x: float, turn_degrees: float = 0.0) -> list[dict[str, float]]:
    """Eyes at 40 and 60, the nose at ``nose_x``; the whole turned in the image plane."""
    points = [(40.0, 50.0), (60.0, 50.0), (nose_x, 60.0)]
    a = math.radians(turn_degrees)
    return [
        {"x": 50 + (x - 50) * math.cos(a) - (y - 50) * math.sin(a),
         "y": 50 + (x - 50) * math.sin(a) + (y - 50) * math.cos(a)}
        for x, y in points
    ]  # fmt: skip


def test_a_sharp_frontal_face_outscores_a_blurred_one_a_profile_and_a_small_one() -> None:
    sharp = covers.score(BOX, 0.4, FRONTAL, 0.9)
    assert covers.score(BOX, 0.02, FRONTAL, 0.9) < sharp / 2  # blurred
    assert covers.score(BOX, 0.4, landmarks(58.0), 0.9) < sharp / 3  # turned away
    assert covers.score([40.0, 40.0, 50.0, 52.0], 0.4, FRONTAL, 0.9) < sharp / 2  # small
    # twice the size but blurred loses to the sharp one (the rule "the largest face" would not)
    assert covers.score([0.0, 0.0, 80.0, 100.0], 0.02, FRONTAL, 0.9) < sharp


def test_the_pose_reads_the_nose_along_the_eye_line_whatever_the_heads_tilt() -> None:
    assert covers.frontal(landmarks(50.0)) == pytest.approx(1.0)
    assert covers.frontal(landmarks(55.0)) == pytest.approx(0.5)
    assert covers.frontal(landmarks(60.0)) == 0.0  # the nose on an eye: a profile
    for turn in (25.0, 90.0, -40.0):
        assert covers.frontal(landmarks(55.0, turn)) == pytest.approx(0.5)
    assert covers.frontal(None) == 1.0  # an event without landmarks: neutral


def test_the_square_adds_the_margin_and_stays_inside_the_photo() -> None:
    # a 40 x 50 face: a square of 50 * 2 = 100 px, centred on it
    assert covers.square([100.0, 100.0, 140.0, 150.0], 1000, 800) == [70.0, 75.0, 170.0, 175.0]
    # at the corner: slid inside, the same size
    assert covers.square([0.0, 0.0, 40.0, 50.0], 1000, 800) == [0.0, 0.0, 100.0, 100.0]
    # a face filling the photo: the square is the photo's short side, inside it
    crop = covers.square([50.0, 10.0, 350.0, 290.0], 400, 300)
    assert crop == [50.0, 0.0, 350.0, 300.0]


def test_the_preview_is_the_largest_jpeg_thumbnail_with_its_scale() -> None:
    items = [
        {"content_type": "image/webp", "width": 256, "height": 192, "uri": "file:///w"},
        {"content_type": "image/jpeg", "width": 960, "height": 720, "uri": "file:///big"},
        {"content_type": "image/jpeg", "width": 256, "height": 192, "uri": "file:///small"},
    ]
    fields = {"width": 1920, "height": 1440, "assets": {"items": items}}
    assert covers.preview_of(fields["assets"], fields["width"]) == {
        "uri": "file:///big",
        "width": 960,
        "height": 720,
        "scale": 0.5,
    }
    assert covers.preview_of(None, 10) is None
    preview = covers.preview_of(fields["assets"], fields["width"])
    cover = covers.cover_of("p", BOX, [10.0, 20.0, 110.0, 120.0], preview)
    assert cover["preview"]["crop"] == [5.0, 10.0, 55.0, 60.0]


class People:
    """The people table as the search reads it, kept in memory."""

    def __init__(self) -> None:
        self.state: people_state.State | None = None

    def people_of(self, user_id: str) -> people_state.State | None:
        return self.state

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        return None


def one_face(photo: str, score: float, seed: int = 0) -> PhotoFaces:
    rng = np.random.default_rng(seed)
    vector = np.full(128, 0.05, np.float32) + rng.normal(0, 0.001, 128).astype(np.float32)
    face = Face(0, list(map(float, vector)), BOX, score, [0.0, 0.0, 100.0, 100.0])
    return PhotoFaces("u", photo, MODEL, [face])


def test_a_person_keeps_the_best_scoring_face_seen_so_far_and_the_first_on_a_tie() -> None:
    search = PeopleSearch(People(), PeoplePolicy(min_faces=1))
    found = search.search([one_face("a", 0.3), one_face("b", 0.6, 1), one_face("c", 0.6, 2)])
    (cluster,) = found.states["u"]["clusters"].values()
    assert cluster["count"] == 3
    assert cluster["cover"]["photo_id"] == "b" and cluster["score"] == 0.6


class Redriven(People):
    """The table, and what each photo's faces were given when it was processed before."""

    def __init__(self, state: people_state.State, given: dict[str, Given]) -> None:
        super().__init__()
        self.state, self.given = state, given

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        return self.given.get(photo_id)


def legacy_person() -> people_state.State:
    """A person of one face ("old") as kept before covers were scored: box and area only."""
    state = PeopleSearch(People(), PeoplePolicy(min_faces=1)).search([one_face("old", 0.1)])
    people = state.states["u"]
    (cluster,) = people["clusters"].values()
    cluster["cover"] = {"photo_id": "old", "box": [0.0, 0.0, 400.0, 400.0]}  # as stored then
    cluster["area"] = 160_000.0
    del cluster["score"]
    return people


def test_a_cover_kept_before_covers_were_scored_gives_way_to_any_scored_face() -> None:
    people = People()
    people.state = legacy_person()
    found = PeopleSearch(people, PeoplePolicy(min_faces=1)).search(
        [one_face("poor", 0.001, 1), one_face("better", 0.5, 2)]
    )
    (after,) = found.states["u"]["clusters"].values()
    assert after["cover"]["photo_id"] == "better" and "area" not in after
    # unscored faces stay below every scored one, and keep their order by size
    assert covers.unscored([0, 0, 1000, 1000]) < 0.0 < 0.001
    assert covers.unscored([0, 0, 100, 100]) < covers.unscored([0, 0, 400, 400])


def test_a_forced_redrive_of_the_photos_gives_a_legacy_person_a_scored_cover() -> None:
    state = legacy_person()
    (pid,) = state["clusters"]
    redriven = Redriven(state, {"old": Given(MODEL, [pid])})  # counted already
    found = PeopleSearch(redriven, PeoplePolicy(min_faces=1)).search([one_face("old", 0.3)])
    cluster = found.states["u"]["clusters"][pid]
    assert cluster["count"] == 1, "nothing counted twice"
    assert cluster["score"] == 0.3 and cluster["cover"]["crop"] == [0.0, 0.0, 100.0, 100.0]
    assert found.rows[entry_key("u", "c", pid)]["cover"]["photo_id"] == "old"  # written
    again = PeopleSearch(Redriven(found.states["u"], redriven.given), PeoplePolicy(min_faces=1))
    assert again.search([one_face("old", 0.3)]).rows == {}  # offered again: nothing to write


def test_an_enrichments_faces_carry_their_score_and_square() -> None:
    fields = {
        "width": 400,
        "height": 300,
        "faces": [
            {
                "box": {"x1": 100.0, "y1": 100.0, "x2": 140.0, "y2": 150.0},
                "embedding": [0.1] * 128,
                "sharpness": 0.3,
                "landmarks": FRONTAL,
                "score": 0.8,
            }
        ],
    }
    (face,) = faces_of(fields)
    assert face is not None and face.crop == [70.0, 75.0, 170.0, 175.0]
    box = [100.0, 100.0, 140.0, 150.0]
    assert face.score == pytest.approx(covers.score(box, 0.3, FRONTAL, 0.8), abs=1e-6)


def test_the_real_models_pick_the_sharp_face_over_a_larger_blurred_one(
    enricher: Enricher, tmp_path: Path
) -> None:
    """The same person twice: first enlarged and blurred (the larger face), then sharp."""
    astronaut = load_photo("astronaut")
    big = cv2.resize(astronaut, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    blurred = encode_jpeg(cv2.GaussianBlur(big, (0, 0), 5.0))
    people = People()
    pipeline = with_assets(enricher, tmp_path)
    pipeline.people = PeopleSearch(people, PeoplePolicy(min_faces=1))
    batch = pipeline.run(
        [
            RawMessage("t", 0, 0, b"u1", upload_bytes(photo_id="soft", data=blurred)),
            RawMessage("t", 0, 1, b"u1", upload_bytes("astronaut", photo_id="sharp")),
        ]
    )
    soft, sharp = (decoded(p)["faces"][0] for p in batch.photos)
    width = [f["box"]["x2"] - f["box"]["x1"] for f in (soft, sharp)]
    assert width[0] > width[1] and soft["sharpness"] < FACE_IN_FOCUS <= sharp["sharpness"]
    (cluster,) = batch.people.states["u1"]["clusters"].values()
    assert cluster["count"] == 2, "both faces are the same person"
    cover: dict[str, Any] = cluster["cover"]
    assert cover["photo_id"] == "sharp"
    x1, y1, x2, y2 = cover["crop"]
    box = sharp["box"]
    assert x2 - x1 == pytest.approx(y2 - y1)  # square
    assert x1 <= box["x1"] and y1 <= box["y1"] and x2 >= box["x2"] and y2 >= box["y2"]
    assert min(x1, y1) >= 0 and max(x2, y2) <= 512  # inside the 512 px photo
    preview = cover["preview"]
    assert "/sharp/" in preview["uri"] and preview["width"] == 512
    assert Path(preview["uri"].removeprefix("file://")).exists()
