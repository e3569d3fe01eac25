"""Repeat a measurement and summarise it: median and spread, never a single lucky run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``runs`` repetitions."""

    median: float
    low: float  # fastest run
    high: float  # slowest run
    runs: int

    def per_second(self, items: int) -> dict[str, float]:
        """Items per second: median, and the range from the slowest to the fastest run."""
        return {"median": items / self.median, "low": items / self.high, "high": items / self.low}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return asdict(self)


def measure(call: Callable[[], object], runs: int, warmup: int = 1) -> Timing:
    """Run ``call`` ``warmup`` times untimed, then ``runs`` times timed."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return Timing(statistics.median(seconds), min(seconds), max(seconds), runs)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]
