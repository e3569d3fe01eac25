"""Model monitoring (streams/engine/drift.py): the figures, then real models on streams of
photos that did and did not change."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from streams.config import load_settings
from streams.engine import Enriched, Enricher, Failed, PhotoInput
from streams.engine.drift import DriftWatch, chi2_quantile, figure, js_divergence
from streams.models.repository import ModelRepository
from streams.samples import PHOTOS, encode_jpeg, load_photo

Z_999 = 3.0902  # the normal score of significance 0.001


def test_the_same_histogram_has_no_drift_and_disjoint_ones_the_most() -> None:
    same = Counter({"a": 50, "b": 50})
    assert js_divergence(same, same) == 0
    apart = figure(Counter({"a": 100}), Counter({"b": 100}), Z_999)
    assert apart.distance == 1.0 and apart.ratio > 10


def test_the_chi_squared_quantile_is_close_enough() -> None:
    # scipy.stats.chi2.ppf(0.999, k) for k = 4, 9, 19
    for degrees, exact in ((4, 18.467), (9, 27.877), (19, 43.820)):
        assert chi2_quantile(degrees, Z_999) == pytest.approx(exact, rel=0.03)


def test_sampling_alone_rarely_passes_for_drift() -> None:
    """Two windows of the same distribution, 200 times: the ratio reaches 1 about as rarely as
    the significance says (0.001; allow a few for the approximation)."""
    rng = random.Random(7)
    weights = [30, 20, 15, 10, 8, 7, 5, 5]
    false_alarms = 0
    for _ in range(200):
        first = Counter(rng.choices(range(8), weights, k=100))
        second = Counter(rng.choices(range(8), weights, k=100))
        false_alarms += figure(first, second, Z_999).ratio >= 1
    assert false_alarms <= 2


WINDOW = 100  # photos: the drift is stated within one window of changed photos


def crops(seed: int, count: int) -> Iterator[np.ndarray]:
    """``count`` photos: random crops (70-100% a side), half of them mirrored, of the sample
    photos; a seed is a stream."""
    rng = np.random.default_rng(seed)
    names = sorted(PHOTOS)
    images = {name: load_photo(name) for name in names}
    for _ in range(count):
        image = images[names[rng.integers(len(names))]]
        height, width = image.shape[:2]
        share = rng.uniform(0.7, 1.0)
        h, w = int(height * share), int(width * share)
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        crop = image[y : y + h, x : x + w]
        yield np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def blurred(image: np.ndarray) -> np.ndarray:
    """A lens out of focus, or a client that shrinks and re-enlarges."""
    return cv2.GaussianBlur(image, (0, 0), 4)


def turned(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image))


@pytest.fixture(scope="module")
def labeller(repository: ModelRepository) -> Iterator[Enricher]:
    options = {"models": "mobilenet_v2", "variants": "none"}
    enricher = Enricher(load_settings().engine.model_copy(update=options), repository)
    yield enricher
    enricher.close()


def enriched(enricher: Enricher, stream: list[np.ndarray]) -> list[list[Enriched | Failed]]:
    """The engine's results for a stream, batch by batch (computed once, watched many times)."""
    photos = [encode_jpeg(image) for image in stream]
    batches = [photos[start : start + 16] for start in range(0, len(photos), 16)]
    return [
        enricher.enrich([PhotoInput(f"p{i}", data, "u") for i, data in enumerate(batch)])
        for batch in batches
    ]


def watched(*streams: list[list[Enriched | Failed]]) -> DriftWatch:
    """A watch fed the streams' results in order (the first is the reference)."""
    watch = DriftWatch(WINDOW, 0.001)
    for stream in streams:
        for results in stream:
            watch.observe(results)
    return watch


def test_photos_blurred_or_turned_drift_within_a_window_and_normal_ones_do_not(
    labeller: Enricher,
) -> None:
    normal_photos = list(crops(2, WINDOW))
    reference, normal = (enriched(labeller, s) for s in (list(crops(1, WINDOW)), normal_photos))
    steady = watched(reference, normal).figures()["mobilenet_v2"]
    assert max(f.ratio for f in steady.values()) < 1, steady
    for change in (blurred, turned):
        watch = watched(reference, enriched(labeller, [change(i) for i in normal_photos]))
        assert "mobilenet_v2" in watch.drifted(), (change.__name__, watch.figures())
    # a second normal stream after the first: still steady
    again = watched(reference, normal, enriched(labeller, list(crops(3, WINDOW))))
    assert not again.drifted(), again.figures()
