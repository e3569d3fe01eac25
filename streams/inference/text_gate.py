"""A learned text gate: whether a photo goes through OCR's full detection, decided from its
image embedding, which the engine has computed by the time OCR runs (the classifier's pooled
features, ``embedding`` in the event).

OCR detection is most of a photo's inference time, and most photos in a library carry no text.
The gate is a logistic regression over the standardised embedding, trained from the stream's
own outputs (each enriched photo's embedding, and the text lines the full detector found in it:
``darkroom models train-gate``). Its threshold is chosen on out-of-fold scores to keep a stated
share of the training photos' text lines (line recall, as the shadow experiments measure it),
so the figure the gate ships with is one it did not see while fitting. A photo without an
embedding (no classifier enabled) always passes: the gate may cost time, never text.

Pure numpy: a gate is a few thousand numbers in a JSON file of its model folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streams.errors import UsageError

Matrix = np.ndarray[Any, np.dtype[np.float64]]
FEATURES = "embedding"  # the event field the gate reads


class GateError(UsageError):
    """Training data the gate cannot learn from, or a gate file it cannot read."""


@dataclass(frozen=True)
class TextGate:
    """A trained gate (module docstring): scores above ``threshold`` go to the detector."""

    mean: Matrix
    scale: Matrix
    weights: Matrix
    bias: float
    threshold: float
    trained: Mapping[str, Any]  # what it was trained on and what it measured there

    def scores(self, embeddings: Matrix) -> Matrix:
        """The probability of text for each row of ``embeddings``."""
        z = (np.asarray(embeddings, np.float64) - self.mean) / self.scale
        return _sigmoid(z @ self.weights + self.bias)

    def passes(self, fields: Mapping[str, Any]) -> bool:
        """Whether a photo with these event fields goes to the detector."""
        embedding = fields.get(FEATURES)
        if embedding is None or len(embedding) != len(self.weights):
            return True  # nothing to judge by: the detector decides
        return bool(self.scores(np.asarray([embedding]))[0] >= self.threshold)

    def to_json(self) -> dict[str, Any]:
        """As the model folder keeps it."""
        return {
            "features": FEATURES,
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "weights": _rounded(self.weights),
            "bias": float(self.bias),
            "threshold": float(self.threshold),
            "trained": dict(self.trained),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> TextGate:
        """The inverse of ``to_json``."""
        if value.get("features") != FEATURES:
            raise GateError(f"a gate over {value.get('features')!r}; this code reads {FEATURES}")
        mean, scale, weights = (
            np.asarray(value[k], np.float64) for k in ("mean", "scale", "weights")
        )
        if not mean.shape == scale.shape == weights.shape:
            raise GateError("a gate's mean, scale and weights differ in length")
        return cls(
            mean, scale, weights, float(value["bias"]), float(value["threshold"]), value["trained"]
        )

    def save(self, path: Path) -> None:
        """Write the gate to ``path`` (JSON)."""
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TextGate:
        """Read a gate written by ``save``."""
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
            raise GateError(f"{path}: not a text gate ({error})") from error


def train(
    embeddings: Matrix,
    lines: Sequence[int],
    *,
    line_recall: float = 0.975,
    folds: int = 5,
    l2: float = 0.03,
    seed: int = 0,
) -> TextGate:
    """A gate from photos' ``embeddings`` and how many text lines the full detector read in
    each (0: none), keeping ``line_recall`` of the lines out of fold."""
    x = np.asarray(embeddings, np.float64)
    counts = np.asarray(lines, np.float64)
    has_text = counts > 0
    if x.ndim != 2 or len(x) != len(counts):
        raise GateError(f"{len(counts)} line counts for embeddings of shape {x.shape}")
    if has_text.sum() < folds or (~has_text).sum() < folds:
        raise GateError(
            f"{int(has_text.sum())} photos with text and {int((~has_text).sum())} without: "
            f"at least {folds} of each are needed"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    held_out = np.empty(len(x))
    fitted = []
    for fold in range(folds):
        test = order[fold::folds]
        train_rows = np.setdiff1d(order, test)
        weights, bias = _fit(z[train_rows], has_text[train_rows], l2)
        held_out[test] = _sigmoid(z[test] @ weights + bias)
        fitted.append((weights, bias))
    threshold = _threshold(held_out, counts, line_recall)
    passed = held_out >= threshold
    # The folds' models averaged, not one refit on every photo: a refit separates its own
    # training photos more sharply, so a threshold chosen out of fold would not mean on its
    # scores what it meant on theirs.
    weights = np.mean([w for w, _ in fitted], axis=0)
    bias = float(np.mean([b for _, b in fitted]))
    trained = {
        "photos": len(x),
        "with_text": int(has_text.sum()),
        "lines": int(counts.sum()),
        "line_recall_target": line_recall,
        "line_recall_out_of_fold": round(float(counts[passed].sum() / counts.sum()), 4),
        "passed_without_text_out_of_fold": round(float(passed[~has_text].mean()), 4),
        "folds": folds,
        "l2": l2,
    }
    return TextGate(mean, scale, weights, bias, threshold, trained)


def _fit(z: Matrix, y: np.ndarray[Any, Any], l2: float, steps: int = 2000) -> tuple[Matrix, float]:
    """Logistic regression on standardised features, both classes weighted equally (text is
    the rarer in a library), by gradient descent: (weights, bias)."""
    weights, bias = np.zeros(z.shape[1]), 0.0
    share = y.mean()
    weight = np.where(y, 0.5 / share, 0.5 / (1.0 - share))
    for _ in range(steps):
        error = (_sigmoid(z @ weights + bias) - y) * weight
        weights -= 0.5 * (z.T @ error / len(y) + l2 * weights)
        bias -= 0.5 * float(error.mean())
    return weights, bias


def _threshold(scores: Matrix, lines: Matrix, recall: float) -> float:
    """The highest score threshold that keeps ``recall`` of the lines."""
    order = np.argsort(-scores)
    kept = np.cumsum(lines[order]) / lines.sum()
    last = int(np.searchsorted(kept, recall - 1e-12))  # the first place the target is reached
    return float(scores[order][min(last, len(order) - 1)])


def _sigmoid(x: Matrix) -> Matrix:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


def _rounded(values: Matrix) -> list[float]:
    return [round(float(v), 6) for v in values]
