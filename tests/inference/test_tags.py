"""Tag scores: probabilities summed per concept; people and text from faces and OCR."""

from __future__ import annotations

import numpy as np

from streams.inference.tags import TagScorer, with_people_and_text
from streams.models.tags import TagTable

TABLE = TagTable(
    parents={"Cat": ["Animal"], "Animal": [], "Drink": []},
    classes=[["Animal", "Cat"], ["Animal", "Cat"], ["Animal"], ["Drink"], []],
)


def names(tags: list[dict]) -> list[tuple[str, float]]:
    return [(t["name"], round(t["score"], 3)) for t in tags]


def test_a_tag_scores_all_its_classes_together() -> None:
    probabilities = np.array([[0.4, 0.3, 0.1, 0.1, 0.1]], dtype=np.float32)
    (tags,) = TagScorer(TABLE, min_score=0.55).score(probabilities)
    # neither cat class passes 0.55 alone; together they do, and Animal holds them and more
    assert names(tags) == [("Animal", 0.8), ("Cat", 0.7)]
    assert tags[1]["parents"] == ["Animal"] and tags[1]["source"] == "labels"


def test_nothing_below_the_minimum() -> None:
    probabilities = np.array([[0.1, 0.1, 0.1, 0.5, 0.2]], dtype=np.float32)
    assert TagScorer(TABLE, min_score=0.55).score(probabilities) == [[]]


def face(score: float) -> dict:
    return {"score": score}


def test_faces_and_text_lines_add_their_tags() -> None:
    fields = {
        "tags": [{"name": "Drink", "score": 0.9, "parents": [], "source": "labels"}],
        "faces": [face(0.93), face(0.6), face(0.3)],
        "ocr": [{"score": 0.99}] * 5,
    }
    tags = with_people_and_text(fields, 0.55)
    assert tags is not None
    assert names(tags) == [
        ("Document", 0.99),
        ("Text", 0.99),
        ("Person", 0.93),
        ("Drink", 0.9),
        ("People", 0.6),
    ]
    assert {t["name"]: t["source"] for t in tags}["People"] == "faces"


def test_one_unsure_face_is_no_person_and_four_lines_no_document() -> None:
    tags = with_people_and_text({"faces": [face(0.5)], "ocr": [{"score": 0.9}] * 4}, 0.55)
    assert tags is not None and names(tags) == [("Text", 0.9)]
    assert with_people_and_text({"faces": [], "ocr": []}, 0.55) is None  # no tagger ran


def test_the_surer_source_keeps_a_name() -> None:
    labelled = {"name": "Person", "score": 0.6, "parents": [], "source": "labels"}
    tags = with_people_and_text({"tags": [labelled], "faces": [face(0.9)]}, 0.55)
    assert tags is not None and [(t["name"], t["source"]) for t in tags] == [("Person", "faces")]
