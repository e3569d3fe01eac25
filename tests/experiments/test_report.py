"""The experiments report: intervals that cover, and verdicts that wait for enough photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.experiments.report import collect, judge, mean_interval, ratio_interval, wilson
from streams.models.manifest import Criterion
from streams.models.repository import ModelRepository
from tests.variants import variant_manifest, with_variants


def record(
    top1: float, variant_ms: float = 5.0, production_ms: float = 10.0, **kw: Any
) -> dict[str, Any]:
    return {
        "variant": {"name": "v", "version": "test-v"},
        "production": {"name": "mobilenet_v2", "version": "1"},
        "task": "classify",
        "mode": "shadow",
        "error": None,
        "variant_ms": variant_ms,
        "production_ms": production_ms,
        "variant_batch": 16,
        "production_batch": 16,
        "agreement": {"top1_agreement": top1, "top5_overlap": 0.8},
        **kw,
    }


@pytest.fixture
def repo(tmp_path: Path, repository: ModelRepository) -> ModelRepository:
    variant = variant_manifest(
        repository,
        "mobilenet_v2",
        "v",
        promote_when={"top1_agreement": ">= 0.9", "latency_ratio": "<= 0.8"},
    )
    return with_variants(tmp_path, repository, variant, only=("mobilenet_v2",))


def test_wilson_covers_and_stays_inside_zero_and_one() -> None:
    all_agree = wilson(20, 20)
    assert all_agree.value == 1.0 and all_agree.high == 1.0
    assert 0.83 < all_agree.low < 0.85  # 20 of 20 does not prove 0.95
    assert wilson(0, 5).low == 0.0
    # coverage: of 400 samples of 50 draws at p = 0.9, about 95% of intervals hold 0.9
    rng = np.random.default_rng(1)
    held = sum(
        (e := wilson(float(rng.binomial(50, 0.9)), 50)).low <= 0.9 <= e.high for _ in range(400)
    )
    assert 0.91 * 400 <= held <= 0.99 * 400


def test_means_and_ratios() -> None:
    values = np.array([0.1, 0.2, 0.3, 0.4])
    estimate = mean_interval(values)
    assert estimate.value == pytest.approx(0.25) and estimate.low < 0.25 < estimate.high
    ratio = ratio_interval(np.full(100, 5.0) + np.arange(100) % 2, np.full(100, 10.0))
    assert ratio.value == pytest.approx(0.55)
    assert ratio.low < 0.55 < ratio.high and ratio.high - ratio.low < 0.03


def test_judgements() -> None:
    at_least = Criterion.model_validate(">= 0.9")
    assert judge(at_least, wilson(200, 200)) == "pass"
    assert judge(at_least, wilson(10, 10)) == "undecided"  # too few photos to say
    assert judge(at_least, wilson(100, 200)) == "fail"
    at_most = Criterion.model_validate("<= 0.8")
    assert judge(at_most, ratio_interval(np.full(50, 5.0), np.full(50, 10.0))) == "pass"
    assert judge(at_most, None) == "no data"


def test_verdicts(repo: ModelRepository) -> None:
    (promote,) = collect([record(1.0) for _ in range(200)]).reports(repo)
    assert promote.verdict == "promote" and promote.photos == 200
    assert promote.latency_ms["variant"] == (5.0, 5.0)
    assert {c.figure: c.judgement for c in promote.criteria} == {
        "top1_agreement": "pass",
        "latency_ratio": "pass",
    }
    (few,) = collect([record(1.0) for _ in range(10)]).reports(repo)
    assert few.verdict == "undecided"
    (slow,) = collect([record(1.0, variant_ms=12.0) for _ in range(200)]).reports(repo)
    assert slow.verdict == "reject"
    failing = [record(1.0) for _ in range(50)] + [record(0.0, error="boom") for _ in range(5)]
    (some_failed,) = collect(failing).reports(repo)
    assert some_failed.failed == 5 and some_failed.photos == 55
    assert some_failed.figures["error_rate"].value == pytest.approx(5 / 55)
    assert some_failed.figures["top1_agreement"].n == 50  # failures carry no agreement


def test_an_older_version_is_reported_but_not_judged(repo: ModelRepository) -> None:
    old = record(1.0, variant={"name": "v", "version": "test-v-old"})
    (report,) = collect([old]).reports(repo)
    assert report.verdict == "not current" and report.version == "test-v-old"
