"""Prometheus metrics of one worker (its own registry, served at GET /metrics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.engine.drift import DriftWatch
from streams.engine.variants import VariantRun

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# Agreement figures are mostly near 1 (shares) or near 0 (distances, error rates): the buckets
# are fine at both ends.
_FIGURE_BUCKETS = (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1, 2)


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
            "Time per named stage per batch (stage=batch: from its start to its delivery, which "
            "overlaps the batch before it)",
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
        self.similar_seconds = Histogram(
            "darkroom_similar_query_seconds",
            "Time to answer a similar-photos query (a user's first includes reading their rows)",
            buckets=_INFERENCE_BUCKETS,
            registry=r,
        )
        self.photos = Counter("darkroom_photos", "Uploads by outcome", ["outcome"], registry=r)
        self.dead_letters = Counter(
            "darkroom_dead_letters", "Dead letters by reason", ["reason"], registry=r
        )
        self.poisoned_batches = Counter(
            "darkroom_poisoned_batches",
            "Batches the pipeline raised on (not transiently), retried photo by photo",
            registry=r,
        )
        self.in_flight = Gauge(
            "darkroom_in_flight", "Uploads taken but not yet answered", registry=r
        )
        # {model, variant}: the production model and the variant beside it.
        self.variant_photos = Counter(
            "darkroom_variant_photos",
            "Photos a variant ran on, by mode and outcome (ok, failed)",
            ["model", "variant", "mode", "outcome"],
            registry=r,
        )
        self.variant_inference_seconds = Histogram(
            "darkroom_variant_inference_seconds",
            "Per-photo inference time of a variant (side=variant) and of production on the "
            "same photos (side=production)",
            ["model", "variant", "side"],
            buckets=_INFERENCE_BUCKETS,
            registry=r,
        )
        self.variant_agreement = Histogram(
            "darkroom_variant_agreement",
            "Per-photo agreement figures of a variant with production",
            ["model", "variant", "figure"],
            buckets=_FIGURE_BUCKETS,
            registry=r,
        )

    def track_switched_off(self, switched_off: Mapping[str, str]) -> None:
        """darkroom_variant_switched_off{variant}: 1 for each variant the engine switched off
        (read from its record at each scrape)."""

        class SwitchedOff(Collector):
            def collect(self) -> Iterable[Metric]:
                family = GaugeMetricFamily(
                    "darkroom_variant_switched_off",
                    "Variants the worker switched off for failing on too many photos",
                    labels=["variant"],
                )
                for name in list(switched_off):
                    family.add_metric([name], 1.0)
                yield family

        self.registry.register(SwitchedOff())

    def track_drift(self, drift: DriftWatch) -> None:
        """darkroom_model_drift{model, signal} (Jensen-Shannon distance from the reference
        window) and darkroom_model_drift_ratio{model, signal} (1 or more: drifted), read from
        the engine's watch at each scrape (streams/engine/drift.py)."""

        class Drift(Collector):
            def collect(self) -> Iterable[Metric]:
                distance = GaugeMetricFamily(
                    "darkroom_model_drift",
                    "How far a production model's outputs moved from its reference window "
                    "(Jensen-Shannon distance, 0-1)",
                    labels=["model", "signal"],
                )
                ratio = GaugeMetricFamily(
                    "darkroom_model_drift_ratio",
                    "A model's drift statistic over its critical value (1 or more: drifted)",
                    labels=["model", "signal"],
                )
                for model, figures in drift.figures().items():
                    for signal, found in figures.items():
                        distance.add_metric([model, signal], found.distance)
                        ratio.add_metric([model, signal], found.ratio)
                yield distance
                yield ratio

        self.registry.register(Drift())

    def observe_variants(self, runs: Iterable[VariantRun]) -> None:
        """One photo's variant runs, once their shadow results are acknowledged."""
        for run in runs:
            model, variant = run.production["name"], run.variant
            outcome = "failed" if run.error else "ok"
            self.variant_photos.labels(model, variant, run.mode, outcome).inc()
            if run.error:
                continue
            seconds = self.variant_inference_seconds
            seconds.labels(model, variant, "variant").observe(run.variant_ms / 1000)
            seconds.labels(model, variant, "production").observe(run.production_ms / 1000)
            for figure, value in run.figures.items():
                self.variant_agreement.labels(model, variant, figure).observe(value)
