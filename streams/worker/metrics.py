"""Prometheus metrics of one worker (its own registry, served at GET /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class WorkerMetrics:
    """Batch sizes, stage and end-to-end latency, outcomes, dead letters, in-flight photos."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.batch_size = Histogram(
            "darkroom_batch_size",
            "Uploads per agent batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.stage_seconds = Histogram(
            "darkroom_stage_seconds",
            "Time per named stage per batch",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "darkroom_end_to_end_seconds",
            "Upload time to enriched/failed event sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.photos = Counter("darkroom_photos", "Uploads by outcome", ["outcome"], registry=r)
        self.dead_letters = Counter(
            "darkroom_dead_letters", "Dead letters by reason", ["reason"], registry=r
        )
        self.in_flight = Gauge(
            "darkroom_in_flight", "Uploads taken but not yet answered", registry=r
        )
