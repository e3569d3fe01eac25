"""Model monitoring: how far each production model's outputs have moved from a reference.

Models drift silently: a camera firmware update, an upload client that re-encodes or strips
colour, a preprocessing bug. Nothing fails; the outputs just change. For each model that
served a photo, a few **signals** are read from its fields, each a histogram over fixed bins:

    labels       top-1 class (the reference's 12 commonest, then "other") and top-1 score
    embedding    each photo's cosine to the reference window's mean direction
    faces        faces per photo (0, 1, 2, 3, 4+) and the best face score
    moderation   the nsfw score
    ocr          lines of text per photo (0, 1, 2-4, 5+)

The first ``window`` photos a model serves are its **reference**; the last ``window`` photos
are the **current** window (it slides photo by photo). Each signal gives two figures: the
Jensen-Shannon **distance** between the two histograms (base 2: 0 for the same distribution, 1
for disjoint ones), which says how far; and a **ratio**, the G statistic of the two windows over
its chi-squared critical value at ``significance``, which says whether sampling alone could
explain it (1 or more: drifted). The ratio, not a fixed distance, decides, because sampling alone
moves a 100-photo window's top-label histogram by a distance of about 0.2 and a 1,000-photo
window's by far less. Measured with mobilenet_v2 on 100-photo windows of crops of the sample
photos (tests/engine/test_drift.py): normal streams 0.30-0.40, the same photos blurred 2.0,
turned 1.4, greyscale 0.9 (greyscale needs a longer window).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from streams.engine.results import Enriched

Fields = dict[str, Any]
SCORE_BINS = 10
TOP_CLASSES = 12  # the reference's commonest top-1 classes get a bin each


def _score_bin(score: float | None) -> int:
    if score is None:
        return SCORE_BINS  # one more bin: no score
    return min(SCORE_BINS - 1, max(0, int(float(score) * SCORE_BINS)))


def _count_bin(count: int, edges: Sequence[int]) -> int:
    """The bin of ``count`` among bins starting at ``edges`` (the last one open-ended)."""
    return max(i for i, edge in enumerate(edges) if count >= edge)


@dataclass(frozen=True)
class Signal:
    """One histogram of a model's outputs: which field, and each photo's bin in it."""

    name: str
    field: str  # the PhotoEnriched field whose producer is the model watched
    bin_of: Callable[[Fields, Reference], Any]  # a photo's bin (hashable), given the reference


def _labels_top(fields: Fields, reference: Reference) -> Any:
    labels = fields.get("labels") or []
    if not labels:
        return "none"
    top = labels[0].get("class_index", labels[0].get("name"))
    return top if top in reference.top_classes else "other"


def _labels_score(fields: Fields, _reference: Reference) -> Any:
    labels = fields.get("labels") or []
    return _score_bin(labels[0]["score"] if labels else None)


def _embedding_cosine(fields: Fields, reference: Reference) -> Any:
    vector = fields.get("embedding")
    if not vector or reference.mean_direction is None:
        return "none"
    cosine = float(np.dot(np.asarray(vector, dtype=np.float32), reference.mean_direction))
    return _score_bin((cosine + 1) / 2)


def _faces_count(fields: Fields, _reference: Reference) -> Any:
    return _count_bin(len(fields.get("faces") or []), (0, 1, 2, 3, 4))


def _faces_score(fields: Fields, _reference: Reference) -> Any:
    faces = fields.get("faces") or []
    return _score_bin(max(face["score"] for face in faces) if faces else None)


def _nsfw(fields: Fields, _reference: Reference) -> Any:
    scores = (fields.get("moderation") or {}).get("scores") or {}
    return _score_bin(scores.get("nsfw"))


def _ocr_lines(fields: Fields, _reference: Reference) -> Any:
    return _count_bin(len(fields.get("ocr") or []), (0, 1, 2, 5))


SIGNALS: tuple[Signal, ...] = (
    Signal("top_label", "labels", _labels_top),
    Signal("top_score", "labels", _labels_score),
    Signal("embedding_direction", "embedding", _embedding_cosine),
    Signal("faces_per_photo", "faces", _faces_count),
    Signal("face_score", "faces", _faces_score),
    Signal("nsfw_score", "moderation", _nsfw),
    Signal("text_lines", "ocr", _ocr_lines),
)


@dataclass
class Reference:
    """What a model's reference window fixed: its commonest top-1 classes and its mean
    embedding direction (the bins of two signals depend on them)."""

    top_classes: frozenset[Any] = frozenset()
    mean_direction: np.ndarray | None = None  # unit length

    @classmethod
    def of(cls, photos: Sequence[Fields]) -> Reference:
        tops = Counter(
            (f.get("labels") or [{}])[0].get("class_index") for f in photos if f.get("labels")
        )
        reference = cls(frozenset(c for c, _ in tops.most_common(TOP_CLASSES)))
        vectors = [f["embedding"] for f in photos if f.get("embedding")]
        if vectors:
            mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
            norm = float(np.linalg.norm(mean))
            reference.mean_direction = mean / norm if norm > 0 else None
        return reference


def js_divergence(first: Counter[Any], second: Counter[Any]) -> float:
    """Jensen-Shannon divergence (nats) of two histograms' empirical distributions."""
    n, m = sum(first.values()), sum(second.values())
    if not n or not m:
        return 0.0
    divergence = 0.0
    for b in set(first) | set(second):
        p, q = first.get(b, 0) / n, second.get(b, 0) / m
        mid = (p + q) / 2
        if p:
            divergence += p * math.log(p / mid) / 2
        if q:
            divergence += q * math.log(q / mid) / 2
    return max(0.0, divergence)


def chi2_quantile(degrees: int, z: float) -> float:
    """The chi-squared quantile whose standard normal score is ``z`` (Wilson-Hilferty: within a
    few percent from 3 degrees of freedom up, which is all a threshold needs)."""
    k = max(1, degrees)
    return float(k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3)


@dataclass(frozen=True)
class Figure:
    """One signal's drift. ``distance``: the Jensen-Shannon distance (base 2) between the
    reference and current histograms, 0 (same) to 1 (disjoint): how far. ``ratio``: the
    G statistic of the two windows (4n times their JS divergence in nats, for two windows of n
    photos) over its chi-squared critical value at the watch's significance: at 1 or more,
    sampling alone explains the difference less often than that significance says."""

    distance: float
    ratio: float


def figure(before: Counter[Any], now: Counter[Any], z: float) -> Figure:
    """The drift of ``now`` from ``before`` (two windows of the same size)."""
    divergence = js_divergence(before, now)
    n = sum(now.values())
    used = len([b for b in set(before) | set(now) if before.get(b, 0) + now.get(b, 0) > 0])
    critical = chi2_quantile(used - 1, z)
    distance = math.sqrt(divergence / math.log(2))
    return Figure(round(distance, 4), round(4 * n * divergence / critical, 3))


@dataclass
class ModelDrift:
    """One production model's reference histograms and its sliding current window. Photos are
    kept as their bins only (the reference's fields until it is full)."""

    model: str
    signals: tuple[Signal, ...]
    window: int
    seen: int = 0
    reference: Reference | None = None
    _first: list[Fields] = field(default_factory=list)  # the reference window, until full
    _before: list[Counter[Any]] = field(default_factory=list)  # per signal: the reference's
    _now: list[Counter[Any]] = field(default_factory=list)  # per signal: the current window's
    _current: deque[tuple[Any, ...]] = field(default_factory=deque)  # each photo's bins

    def observe(self, fields: Fields) -> None:
        self.seen += 1
        if self.reference is None:
            self._first.append(fields)
            if len(self._first) == self.window:
                self.reference = Reference.of(self._first)
                self._before = [
                    Counter(self._bins_of(f)[i] for f in self._first)
                    for i in range(len(self.signals))
                ]
                self._now = [Counter() for _ in self.signals]
                self._first = []
            return
        bins = self._bins_of(fields)
        self._current.append(bins)
        for counts, b in zip(self._now, bins, strict=True):
            counts[b] += 1
        if len(self._current) > self.window:
            for counts, b in zip(self._now, self._current.popleft(), strict=True):
                counts[b] -= 1

    def _bins_of(self, fields: Fields) -> tuple[Any, ...]:
        assert self.reference is not None
        return tuple(signal.bin_of(fields, self.reference) for signal in self.signals)

    def figures(self, z: float) -> dict[str, Figure]:
        """Per signal, its drift (``z``: the significance's normal score); empty until both
        windows are full."""
        if len(self._current) < self.window:
            return {}
        return {
            signal.name: figure(before, +now, z)
            for signal, before, now in zip(self.signals, self._before, self._now, strict=True)
        }


class DriftWatch:
    """Every production model's drift, fed with each enriched photo (streams/engine/enricher.py
    calls ``observe``; the worker exports ``figures`` to Prometheus at each scrape)."""

    def __init__(self, window: int, significance: float) -> None:
        """``window``: photos in the reference and in the current window; ``significance``:
        how rarely sampling alone may pass for drift (0.001: once in a thousand windows)."""
        self.window = window
        self.z = NormalDist().inv_cdf(1 - significance)
        self.models: dict[str, ModelDrift] = {}
        # the pipeline's thread observes, the event loop reads at each scrape
        self._lock = threading.Lock()

    def observe(self, results: Iterable[Any]) -> None:
        """Each Enriched's fields, under the models that produced them (a canary's photo
        counts for the canary: production did not serve it)."""
        with self._lock:
            for result in results:
                if isinstance(result, Enriched):
                    self._observe(result)

    def _observe(self, result: Enriched) -> None:
        by_model: dict[str, list[Signal]] = {}
        for signal in SIGNALS:
            producer = result.produced_by.get(signal.field)
            if producer is not None and signal.field in result.fields:
                by_model.setdefault(producer["name"], []).append(signal)
        for model, signals in by_model.items():
            watched = self.models.get(model)
            if watched is None:
                watched = self.models[model] = ModelDrift(model, tuple(signals), self.window)
            watched.observe(result.fields)

    def figures(self) -> dict[str, dict[str, Figure]]:
        """model -> signal -> drift, for the models whose windows are both full."""
        with self._lock:
            models = list(self.models.items())
            return {m: f for m, watched in models if (f := watched.figures(self.z))}

    def drifted(self) -> dict[str, float]:
        """model -> its largest ratio, for the models with a signal at 1 or more."""
        found = {}
        for model, figures in self.figures().items():
            worst = max(f.ratio for f in figures.values())
            if worst >= 1:
                found[model] = worst
        return found
