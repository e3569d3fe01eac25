"""A variant's fields against production's (streams/engine/contract.py): what downstream reads by
shape must match; what legitimately varies per photo may."""

from __future__ import annotations

from streams.engine.contract import mismatch

PRODUCTION = {
    "labels": [{"name": "tabby", "class_index": 281, "score": 0.7}],
    "embedding": [0.1] * 1280,
    "faces": [{"box": [1, 2, 3, 4], "score": 0.9, "embedding": [0.2] * 128}],
    "nsfw": {"score": 0.01, "flagged": False},
    "text": None,
}


def test_what_varies_per_photo_may_vary() -> None:
    variant = {
        "labels": [  # more labels, other scores
            {"name": "cat", "class_index": 282, "score": 1},
            {"name": "dog", "class_index": 1, "score": 0.1},
        ],
        "embedding": [0.3] * 1280,
        "faces": [],  # no face found
        "nsfw": {"score": 0.5, "flagged": True},
        "text": {"lines": []},  # production had none for this photo
    }
    assert mismatch(PRODUCTION, variant) is None


def test_what_downstream_reads_by_shape_must_match() -> None:
    def changed(**fields: object) -> dict[str, object]:
        return {**PRODUCTION, **fields}

    face = {"box": [1, 2, 3, 4], "score": 0.9, "embedding": [0.2] * 512}
    assert mismatch(PRODUCTION, changed(embedding=[0.1] * 512)) == (
        "embedding: width 512, production 1280"
    )
    assert mismatch(PRODUCTION, changed(faces=[face])) == (
        "faces[].embedding: width 512, production 128"
    )
    assert mismatch(PRODUCTION, changed(nsfw={"score": 0.5})) == "nsfw.flagged: missing"
    assert mismatch(PRODUCTION, changed(nsfw={"score": 0.5, "flagged": 1})) == (
        "nsfw.flagged: int, production bool"
    )
    assert mismatch(PRODUCTION, changed(labels="tabby")) == "labels: str, production list"
    assert mismatch(PRODUCTION, {k: v for k, v in PRODUCTION.items() if k != "faces"}) == (
        "faces: missing"
    )
