"""Agreement figures: each equals its definition on hand-made fields, and 'equal' scores best."""

from __future__ import annotations

import pytest

from streams.inference import agreement
from streams.inference.tasks.classify import ClassifyRunner
from streams.inference.tasks.face_embed import FaceEmbedRunner
from streams.inference.tasks.faces import FaceDetectRunner
from streams.inference.tasks.moderate import ModerateRunner
from streams.inference.tasks.ocr import OcrRunner


def labels(*indices: int) -> list[dict[str, object]]:
    return [{"name": str(i), "score": 0.1, "class_index": i} for i in indices]


def face(x: float, embedding: list[float] | None = None) -> dict[str, object]:
    return {"box": {"x1": x, "y1": 0.0, "x2": x + 10, "y2": 10.0}, "embedding": embedding}


def line(text: str, x: float, y: float) -> dict[str, object]:
    return {"text": text, "quad": [{"x": x, "y": y}, {"x": x + 5, "y": y + 5}]}


def test_classify_figures() -> None:
    same = ClassifyRunner.compare(
        {"labels": labels(1, 2, 3, 4, 5), "embedding": [1.0, 0.0]},
        {"labels": labels(1, 2, 3, 4, 5), "embedding": [1.0, 0.0]},
    )
    assert same == {"top1_agreement": 1.0, "top5_overlap": 1.0, "embedding_cosine": 1.0}
    other = ClassifyRunner.compare(
        {"labels": labels(1, 2, 3, 4, 5), "embedding": [1.0, 0.0]},
        {"labels": labels(2, 1, 9, 8, 7), "embedding": [0.6, 0.8]},
    )
    assert other == {"top1_agreement": 0.0, "top5_overlap": 0.4, "embedding_cosine": 0.6}


def test_faces_match_one_to_one_and_a_missed_face_counts_zero() -> None:
    assert FaceDetectRunner.compare({"faces": []}, {"faces": []}) == {
        "face_count_agreement": 1.0,
        "face_iou": 1.0,
    }
    shifted = FaceDetectRunner.compare({"faces": [face(0), face(100)]}, {"faces": [face(5)]})
    # a 10x10 box moved by 5: IoU 50 / 150; the second face was missed and counts 0
    assert shifted["face_count_agreement"] == 0.0
    assert shifted["face_iou"] == pytest.approx((50 / 150) / 2)


def test_face_embeddings_by_euclidean_distance() -> None:
    figures = FaceEmbedRunner.compare(
        {"faces": [face(0, [0.0, 0.0]), face(50, [1.0, 1.0])]},
        {"faces": [face(0, [3.0, 4.0]), face(50, [1.0, 1.0])]},
    )
    assert figures == {"face_embedding_distance": 2.5}
    assert FaceEmbedRunner.compare({"faces": [face(0)]}, {"faces": [face(0)]}) == {}


def test_moderation_figures() -> None:
    ours = {"moderation": {"scores": {"nsfw": 0.1, "sfw": 0.9}, "flagged": False}}
    theirs = {"moderation": {"scores": {"nsfw": 0.7, "sfw": 0.3}, "flagged": True}}
    figures = ModerateRunner.compare(ours, theirs)
    assert figures["score_difference"] == pytest.approx(0.6)
    assert figures["flag_agreement"] == 0.0


def test_ocr_figures_read_in_reading_order() -> None:
    ours = {"ocr": [line("STOP", 0, 0), line("AHEAD", 0, 20)]}
    # the same lines listed bottom first: the text compared is the same
    assert OcrRunner.compare(ours, {"ocr": [line("AHEAD", 0, 20), line("STOP", 0, 0)]}) == {
        "character_error_rate": 0.0,
        "line_recall": 1.0,
        "text_found_agreement": 1.0,
    }
    misread = OcrRunner.compare(ours, {"ocr": [line("ST0P", 0, 0)]})
    # "STOP\nAHEAD" (10 characters) read as "ST0P": 1 substitution and 6 deletions
    assert misread["character_error_rate"] == pytest.approx(7 / 10)
    assert misread["line_recall"] == 0.0
    assert OcrRunner.compare({"ocr": []}, {"ocr": []})["character_error_rate"] == 0.0
    assert OcrRunner.compare({"ocr": []}, ours)["text_found_agreement"] == 0.0


def test_edit_distance() -> None:
    assert agreement.edit_distance("kitten", "sitting") == 3
    assert agreement.edit_distance("", "abc") == 3
    assert agreement.edit_distance("same", "same") == 0
