"""Face embeddings on real portraits: the same person in different photos, and other people.

Barack Obama in three White House photos (2012, 2009, 2010) and Joe Biden (streams/samples.py:
public domain, from the face_recognition 1.3.0 source archive), Eileen Collins (the astronaut)
and Grace Hopper (matplotlib's sample photo, US Navy, public domain). Measured when written
(dlib's own alignment in brackets, benchmarks/faces.py): the same person 0.33-0.45 (0.33-0.43),
different people 0.64-0.90 (0.70-0.88); dlib's threshold is 0.6.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from streams.config import load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo

SAME_PERSON = 0.6  # dlib's convention


@pytest.fixture(scope="module")
def faces_only(repository: ModelRepository) -> Iterator[Enricher]:
    settings = load_settings().engine.model_copy(
        update={"models": "blazeface,dlib_face_resnet", "variants": "none"}
    )
    enricher = Enricher(settings, repository)
    yield enricher
    enricher.close()


def photos() -> dict[str, np.ndarray]:
    found = {name: load_photo(name) for name in ("obama", "obama2", "obama3", "biden", "astronaut")}
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    found["hopper"] = cv2.imread(str(hopper))
    return found


@pytest.fixture(scope="module")
def embeddings(faces_only: Enricher) -> dict[str, np.ndarray]:
    loaded = photos()
    results = faces_only.enrich([PhotoInput(n, encode_jpeg(p)) for n, p in loaded.items()])
    found = {}
    for name, result in zip(loaded, results, strict=True):
        assert isinstance(result, Enriched), result
        (face,) = result.fields["faces"]  # one person in each
        found[name] = np.array(face["embedding"])
    return found


def person(name: str) -> str:
    return "obama" if name.startswith("obama") else name


def test_the_same_person_in_other_photos_is_within_dlibs_threshold(
    embeddings: dict[str, np.ndarray],
) -> None:
    for a, b in itertools.combinations(["obama", "obama2", "obama3"], 2):
        distance = float(np.linalg.norm(embeddings[a] - embeddings[b]))
        assert distance < SAME_PERSON - 0.1, (a, b, distance)  # 0.33-0.45 when written


def test_different_people_are_beyond_it(embeddings: dict[str, np.ndarray]) -> None:
    for a, b in itertools.combinations(embeddings, 2):
        if person(a) != person(b):
            distance = float(np.linalg.norm(embeddings[a] - embeddings[b]))
            assert distance > SAME_PERSON, (a, b, distance)  # 0.64-0.90 when written


def test_a_face_embeds_alike_at_any_size_and_turn(
    faces_only: Enricher, embeddings: dict[str, np.ndarray]
) -> None:
    obama = load_photo("obama")
    height, width = obama.shape[:2]
    for angle, scale in ((20, 1.0), (-10, 0.35), (0, 1.5)):
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
        copy = cv2.warpAffine(obama, turn, (width, height))  # black borders, not mirrored faces
        (result,) = faces_only.enrich([PhotoInput("copy", encode_jpeg(copy))])
        assert isinstance(result, Enriched)
        (face,) = result.fields["faces"]
        distance = float(np.linalg.norm(np.array(face["embedding"]) - embeddings["obama"]))
        assert distance < 0.4, (angle, scale, distance)  # 0.11-0.31 when written
