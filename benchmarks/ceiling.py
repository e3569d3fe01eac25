"""The end-to-end benchmark's ceilings: the engine alone on the workers' photos, and inference
alone on decoded tensors; plus one photo's inference (the half-rate latency goal's unit).

Same models, photos and batch size as the workers (benchmarks/e2e.py); no broker, no blobs.
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any

from benchmarks.engine import _works
from benchmarks.stats import measure, percentile
from streams.engine import Enricher, PhotoInput
from streams.inference.tasks.base import Work

# inference alone runs on decoded tensors held in memory: a slice of the set (it repeats every
# 8 photos, benchmarks/photoset.py) keeps that memory small
TENSOR_PHOTOS = 48


def engine_ceiling(
    enricher: Enricher, photos: list[tuple[str, bytes]], batch: int, runs: int
) -> dict[str, Any]:
    """Photos/s of the engine alone (``enrich_batches``: decode overlapped with inference) and
    of inference alone; seconds of one photo's inference (every model, batch 1)."""
    engine = measure(partial(engine_round, enricher, photos, batch), runs, 0)

    decoded = [enricher.decoder.decode(data) for _, data in photos[:TENSOR_PHOTOS]]
    works = {runner.name: _works(enricher, decoded, runner) for runner in enricher.runners}

    def inference_only() -> None:
        for runner in enricher.runners:
            for i in range(0, len(decoded), batch):
                runner.run(works[runner.name][i : i + batch])

    inference = measure(inference_only, runs, 0)
    single = [
        measure(partial(_one_photo, enricher, works, i), 1, 0).median for i in range(len(decoded))
    ]
    return {
        "photos": len(photos),
        "batch": batch,
        "engine_photos_per_s": engine.per_second(len(photos)),
        "inference_only_photos_per_s": inference.per_second(len(decoded)),
        "one_photo_inference_s": {q: percentile(single, q) for q in (50, 99)},
    }


def engine_round(enricher: Enricher, photos: list[tuple[str, bytes]], batch: int) -> float:
    """Seconds for the engine alone to enrich ``photos`` once, in batches of ``batch``."""
    inputs = [PhotoInput(name, data) for name, data in photos]
    batches = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
    started = time.perf_counter()
    for _results in enricher.enrich_batches(batches):
        pass
    return time.perf_counter() - started


def per_second(items: int, seconds: list[float]) -> dict[str, Any]:
    """Items per second over runs: median, slowest, fastest, each run."""
    rates = [items / s for s in seconds]
    return {
        "median": statistics.median(rates),
        "low": min(rates),
        "high": max(rates),
        "runs": rates,
    }


def _one_photo(enricher: Enricher, works: dict[str, list[Work]], i: int) -> None:
    for runner in enricher.runners:
        runner.run(works[runner.name][i : i + 1])
