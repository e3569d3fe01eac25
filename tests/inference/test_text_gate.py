"""The learned text gate (streams/inference/text_gate.py), on data whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streams.inference.text_gate import GateError, TextGate, train


def library(photos: int, share: float, seed: int) -> tuple[np.ndarray, list[int]]:
    """Embeddings where text moves a few dimensions, noisily; 1-3 lines on photos with text."""
    rng = np.random.default_rng(seed)
    has_text = rng.random(photos) < share
    x = rng.normal(0.0, 1.0, (photos, 32))
    x[has_text, :4] += 1.5
    lines = [int(rng.integers(1, 4)) if t else 0 for t in has_text]
    return x, lines


def test_it_keeps_the_lines_it_promises_on_photos_it_never_saw() -> None:
    x, lines = library(600, 0.3, seed=1)
    gate = train(x, lines, line_recall=0.97)
    assert gate.trained["line_recall_out_of_fold"] >= 0.97
    test_x, test_lines = library(2000, 0.3, seed=2)
    counts = np.asarray(test_lines)
    passed = gate.scores(test_x) >= gate.threshold
    assert counts[passed].sum() / counts.sum() >= 0.95  # the promise holds, give or take
    assert passed[counts == 0].mean() < 0.5  # and it is a gate: most photos without text skip


def test_a_photo_without_an_embedding_always_passes() -> None:
    gate = train(*library(200, 0.3, seed=3))
    assert gate.passes({}) and gate.passes({"embedding": None})
    assert gate.passes({"embedding": [0.0] * 7})  # another model's size: not judged
    never = TextGate(gate.mean, gate.scale, gate.weights, gate.bias, 2.0, {})
    assert not never.passes({"embedding": [0.0] * 32})


def test_a_saved_gate_reads_back_the_same(tmp_path: Path) -> None:
    x, lines = library(200, 0.3, seed=4)
    gate = train(x, lines)
    gate.save(tmp_path / "gate.json")
    again = TextGate.load(tmp_path / "gate.json")
    assert np.allclose(again.scores(x), gate.scores(x), atol=1e-5)
    assert again.threshold == gate.threshold and again.trained == gate.trained


def test_what_it_cannot_learn_from_or_read_is_said(tmp_path: Path) -> None:
    x, _ = library(40, 0.3, seed=5)
    with pytest.raises(GateError, match="with text"):
        train(x, [0] * 40)
    with pytest.raises(GateError, match="line counts"):
        train(x, [1, 0])
    (tmp_path / "bad.json").write_text('{"features": "pixels"}', encoding="utf-8")
    with pytest.raises(GateError, match="pixels"):
        TextGate.load(tmp_path / "bad.json")
    with pytest.raises(GateError, match="not a text gate"):
        TextGate.load(tmp_path / "missing.json")
