"""`darkroom experiments drift`: a row per model and window, read from PhotoEnriched records."""

from __future__ import annotations

import random
from typing import Any

from streams.experiments.drift import drift_by_window

MODEL = {"name": "mobilenet_v2", "version": "1"}


def record(i: int, top: int) -> dict[str, Any]:
    return {
        "photo_id": f"p{i}",
        "labels": [{"name": str(top), "score": 0.5, "class_index": top}],
        "produced_by": {"labels": MODEL},
    }


def test_a_row_per_window_and_the_change_is_seen() -> None:
    rng = random.Random(3)
    steady = [record(i, rng.choice([1, 2, 3, 4])) for i in range(300)]
    changed = [record(300 + i, rng.choice([5, 6])) for i in range(100)]
    rows = drift_by_window([*steady, *changed], window=100, significance=0.001)
    assert [(r.model, r.window, r.photos) for r in rows] == [
        ("mobilenet_v2", 1, 200),
        ("mobilenet_v2", 2, 300),
        ("mobilenet_v2", 3, 400),
    ]
    assert [r.drifted for r in rows] == [False, False, True]
    assert rows[-1].signal == "top_label" and rows[-1].distance > 0.9
