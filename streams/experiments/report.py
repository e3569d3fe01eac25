"""`darkroom experiments report`: what photos.shadow says about each variant, and its verdict.

Every ShadowResult is one photo on which a variant ran beside production. Per variant version:
photos seen, how many it failed on, per-photo inference time on both sides (p50 / p99), each
agreement figure as a mean with a 95% interval, and each ``[rollout.promote_when]`` criterion
judged on that interval:

- pass: the whole interval meets the criterion;
- fail: none of it does;
- undecided: it straddles the threshold (more photos will decide).

The verdict is "promote" when every criterion passes, "reject" when any fails, and "undecided"
otherwise. Intervals: Wilson's for figures that are shares (every value 0 or 1), the normal
approximation for other means, and the delta method for ``latency_ratio`` (the ratio of mean
inference times, the variant's over production's, on the same photos).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from streams.config import Settings
from streams.contracts.codec import Codec
from streams.contracts.schemas import EventType
from streams.engine.variants import ERROR_RATE, LATENCY_RATIO
from streams.models.manifest import Criterion, ModelManifest
from streams.models.repository import ModelRepository
from streams.tail import scan

Z95 = 1.959963984540054
Judgement = Literal["pass", "fail", "undecided", "no data"]
Verdict = Literal["promote", "reject", "undecided", "no criteria", "not current"]


@dataclass(frozen=True)
class Estimate:
    """A figure's mean over the photos and its 95% interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def wilson(successes: float, n: int) -> Estimate:
    """A share with Wilson's score interval (sound near 0 and 1, unlike the normal one)."""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_interval(values: np.ndarray) -> Estimate:
    """A mean with the normal approximation's interval (Wilson's for 0/1 values)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if np.isin(values, (0.0, 1.0)).all():
        return wilson(float(values.sum()), n)
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - half, mean + half, n)


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """mean(numerator) / mean(denominator) over paired values, with the delta method."""
    n = len(numerator)
    if n == 0 or float(denominator.mean()) <= 0:
        return Estimate(math.nan, math.nan, math.nan, n)
    mx, my = float(numerator.mean()), float(denominator.mean())
    ratio = mx / my
    if n < 2:
        return Estimate(ratio, -math.inf, math.inf, n)
    covariance = np.cov(numerator, denominator, ddof=1)
    variance = (
        covariance[0, 0] / my**2
        + mx**2 * covariance[1, 1] / my**4
        - 2 * mx * covariance[0, 1] / my**3
    ) / n
    half = Z95 * math.sqrt(max(0.0, float(variance)))
    return Estimate(ratio, ratio - half, ratio + half, n)


def judge(criterion: Criterion, estimate: Estimate | None) -> Judgement:
    """pass / fail / undecided for ``estimate``'s interval against ``criterion``."""
    if estimate is None or estimate.n == 0 or math.isnan(estimate.value):
        return "no data"
    upward = criterion.op in (">=", ">")
    worst, best = (estimate.low, estimate.high) if upward else (estimate.high, estimate.low)
    if criterion.holds(worst):
        return "pass"
    if not criterion.holds(best):
        return "fail"
    return "undecided"


@dataclass
class _Samples:
    """What the records of one variant version hold, gathered before the statistics."""

    production: str
    task: str
    modes: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    variant_ms: list[float] = field(default_factory=list)
    production_ms: list[float] = field(default_factory=list)
    variant_batch: list[int] = field(default_factory=list)
    production_batch: list[int] = field(default_factory=list)
    figures: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CriterionResult:
    """One promote_when line, judged."""

    figure: str
    criterion: Criterion
    estimate: Estimate | None
    judgement: Judgement


@dataclass(frozen=True)
class VariantReport:
    """Everything the report says about one variant version."""

    variant: str
    version: str
    production: str  # name@version it was measured against (the latest seen)
    task: str
    modes: dict[str, int]  # shadow / canary -> photos
    photos: int
    failed: int
    latency_ms: dict[str, tuple[float, float]]  # "variant" / "production" -> (p50, p99)
    mean_batch: dict[str, float]  # "variant" / "production" -> mean photos per run
    figures: dict[str, Estimate]
    criteria: list[CriterionResult]
    verdict: Verdict

    @property
    def key(self) -> str:
        """name@version."""
        return f"{self.variant}@{self.version}"


class Experiments:
    """Folds ShadowResult records into per-variant reports."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, str], _Samples] = {}
        self.unreadable = 0  # messages of the topic that are not ShadowResults

    def add(self, record: dict[str, Any]) -> None:
        """One decoded ShadowResult."""
        variant, production = record["variant"], record["production"]
        key = (variant["name"], variant["version"])
        samples = self._samples.setdefault(
            key, _Samples(f"{production['name']}@{production['version']}", record["task"])
        )
        samples.production = f"{production['name']}@{production['version']}"
        samples.modes[record["mode"]] = samples.modes.get(record["mode"], 0) + 1
        if record.get("error"):
            samples.failed += 1
            return
        samples.variant_ms.append(record["variant_ms"])
        samples.production_ms.append(record["production_ms"])
        samples.variant_batch.append(record["variant_batch"])
        samples.production_batch.append(record["production_batch"])
        for figure, value in record["agreement"].items():
            samples.figures.setdefault(figure, []).append(float(value))

    def reports(self, repository: ModelRepository | None = None) -> list[VariantReport]:
        """A report per variant version seen, judged by its manifest where it is current."""
        return [
            _report(name, version, samples, _manifest(repository, name))
            for (name, version), samples in sorted(self._samples.items())
        ]


def collect(records: Iterable[dict[str, Any]]) -> Experiments:
    """An Experiments of ``records``."""
    experiments = Experiments()
    for record in records:
        experiments.add(record)
    return experiments


def read_shadow(
    settings: Settings, codec: Codec, on_record: Callable[[int], None] = lambda _n: None
) -> Experiments:
    """Every committed ShadowResult of photos.shadow, folded (``on_record``: a count so far).

    Records that do not decode are counted in ``Experiments.unreadable`` and left out.
    """
    experiments = Experiments()
    for count, message in enumerate(scan(settings, codec, settings.topics.shadow), start=1):
        event = message.event
        if event is not None and event.event_type is EventType.SHADOW_RESULT:
            experiments.add(event.record)
        else:
            experiments.unreadable += 1
        on_record(count)
    return experiments


def _manifest(repository: ModelRepository | None, name: str) -> ModelManifest | None:
    if repository is None:
        return None
    found = [m for m in repository.manifests() if m.name == name]
    return found[0] if found else None


def _report(
    name: str, version: str, samples: _Samples, manifest: ModelManifest | None
) -> VariantReport:
    photos = sum(samples.modes.values())
    variant_ms, production_ms = np.array(samples.variant_ms), np.array(samples.production_ms)
    figures = {f: mean_interval(np.array(v)) for f, v in sorted(samples.figures.items())}
    figures[LATENCY_RATIO] = ratio_interval(variant_ms, production_ms)
    figures[ERROR_RATE] = wilson(samples.failed, photos)
    criteria: list[CriterionResult] = []
    verdict: Verdict = "no criteria"
    if manifest is None or manifest.version != version:
        verdict = "not current"
    elif manifest.rollout is not None and manifest.rollout.promote_when:
        for figure, criterion in manifest.rollout.promote_when.items():
            estimate = figures.get(figure)
            criteria.append(
                CriterionResult(figure, criterion, estimate, judge(criterion, estimate))
            )
        judgements = {c.judgement for c in criteria}
        verdict = (
            "reject"
            if "fail" in judgements
            else "promote"
            if judgements == {"pass"}
            else "undecided"
        )
    return VariantReport(
        variant=name,
        version=version,
        production=samples.production,
        task=samples.task,
        modes=dict(samples.modes),
        photos=photos,
        failed=samples.failed,
        latency_ms={
            "variant": _percentiles(variant_ms),
            "production": _percentiles(production_ms),
        },
        mean_batch={
            "variant": float(np.mean(samples.variant_batch)) if samples.variant_batch else 0.0,
            "production": float(np.mean(samples.production_batch))
            if samples.production_batch
            else 0.0,
        },
        figures=figures,
        criteria=criteria,
        verdict=verdict,
    )


def as_json(value: Any) -> Any:
    """A report (``dataclasses.asdict`` of it) as JSON values: NaN and infinities as null (JSON
    has neither), a Criterion as the text the manifest writes."""
    if isinstance(value, Criterion):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    if len(values) == 0:
        return (math.nan, math.nan)
    p50, p99 = np.percentile(values, [50, 99])
    return (float(p50), float(p99))
