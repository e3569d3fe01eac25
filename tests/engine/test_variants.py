"""Variants in the engine: shadow runs beside production, canary serves, failures stay measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.engine.runners import EngineConfigError
from streams.models.repository import ModelRepository
from streams.models.rollout import in_rollout
from streams.samples import encode_jpeg, load_photo
from tests.variants import variant_manifest, with_variants

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")
CLASSIFY_ONLY = ("mobilenet_v2",)


def engine(repository: ModelRepository, **settings: object) -> Enricher:
    options = {"models": "mobilenet_v2", "variants": "all", **settings}
    return Enricher(load_settings().engine.model_copy(update=options), repository)


def enrich(enricher: Enricher, user: str = "u1") -> list[Enriched]:
    items = [PhotoInput(n, encode_jpeg(load_photo(n)), user) for n in PHOTOS]
    results = enricher.enrich(items)
    assert all(isinstance(r, Enriched) for r in results), results
    return results  # type: ignore[return-value]


@pytest.fixture
def twin(tmp_path: Path, repository: ModelRepository) -> Iterator[Enricher]:
    """mobilenet_v2 with an identical shadow and a BGR-fed shadow of it."""
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "twin"),
        variant_manifest(repository, "mobilenet_v2", "bgr", input_color="BGR"),
        only=CLASSIFY_ONLY,
    )
    enricher = engine(repo)
    yield enricher
    enricher.close()


def test_a_shadow_runs_beside_production_and_is_only_measured(twin: Enricher) -> None:
    for result in enrich(twin):
        runs = {run.variant: run for run in result.variants}
        assert set(runs) == {"twin", "bgr"}
        assert result.produced_by["labels"]["name"] == "mobilenet_v2"  # production serves
        same = runs["twin"]
        assert same.mode == "shadow" and same.error is None
        assert same.fields is not None
        assert same.fields["labels"] == result.fields["labels"]
        assert same.figures["top1_agreement"] == 1.0
        assert same.figures["top5_overlap"] == 1.0
        assert same.figures["embedding_cosine"] == pytest.approx(1.0, abs=1e-5)
        assert same.produced_by["labels"] == {"name": "twin", "version": "test-twin"}
        assert same.production == {
            "name": "mobilenet_v2",
            "version": result.produced_by["labels"]["version"],
        }
        assert same.variant_ms > 0 and same.production_ms > 0
        assert same.variant_batch == same.production_batch == len(PHOTOS)
        assert result.timings_ms["variant:twin"] == same.variant_ms


def test_a_different_variant_disagrees_somewhere(twin: Enricher) -> None:
    figures = [run.figures for r in enrich(twin) for run in r.variants if run.variant == "bgr"]
    assert len(figures) == len(PHOTOS)
    assert min(f["embedding_cosine"] for f in figures) < 0.99
    assert min(f["top5_overlap"] for f in figures) < 1.0


def test_a_canary_serves_its_users_and_production_still_runs(
    tmp_path: Path, repository: ModelRepository
) -> None:
    variant = variant_manifest(
        repository, "mobilenet_v2", "bgr", mode="canary", percent=50, input_color="BGR"
    )
    repo = with_variants(tmp_path, repository, variant, only=CLASSIFY_ONLY)
    enricher = engine(repo)
    try:
        users = [f"user-{i}" for i in range(40)]
        inside = [u for u in users if in_rollout(repo.get("bgr"), u)]
        outside = [u for u in users if u not in inside]
        assert inside and outside
        (served,) = enricher.enrich(
            [PhotoInput("c", encode_jpeg(load_photo("chelsea")), inside[0])]
        )
        (plain,) = enricher.enrich(
            [PhotoInput("c", encode_jpeg(load_photo("chelsea")), outside[0])]
        )
        assert isinstance(served, Enriched) and isinstance(plain, Enriched)
        (run,) = served.variants
        assert run.mode == "canary" and run.fields is not None
        assert served.fields["labels"] == run.fields["labels"]  # the variant's, served
        assert served.produced_by["labels"]["name"] == "bgr"
        assert served.produced_by["embedding"]["name"] == "bgr"
        assert plain.variants == [] and plain.produced_by["labels"]["name"] == "mobilenet_v2"
        assert enricher.model_versions_for(inside[0]) == {"bgr": "test-bgr"}
        assert enricher.model_versions_for(outside[0]) == enricher.model_versions
    finally:
        enricher.close()


def test_a_variant_that_fails_costs_no_photo(tmp_path: Path, repository: ModelRepository) -> None:
    """A canary that fails on every photo (a top_k that is no number): production serves."""
    broken = variant_manifest(
        repository, "mobilenet_v2", "broken", mode="canary", percent=100, params={"top_k": "x"}
    )
    enricher = engine(with_variants(tmp_path, repository, broken, only=CLASSIFY_ONLY))
    try:
        for result in enrich(enricher):
            (run,) = result.variants
            assert run.fields is None and run.error and "broken" in run.error
            assert run.figures == {}
            assert result.produced_by["labels"]["name"] == "mobilenet_v2"
            assert result.fields["labels"]
    finally:
        enricher.close()


def test_a_variant_that_cannot_run_at_all_is_dropped(
    tmp_path: Path, repository: ModelRepository
) -> None:
    """A wrong input name fails the warm-up: the variant is dropped, production serves."""
    broken = variant_manifest(repository, "mobilenet_v2", "broken", input_name="nope")
    enricher = engine(with_variants(tmp_path, repository, broken, only=CLASSIFY_ONLY))
    try:
        assert enricher.variants == []
        assert all(r.variants == [] and r.fields["labels"] for r in enrich(enricher))
    finally:
        enricher.close()


def test_variants_none_runs_production_alone(tmp_path: Path, repository: ModelRepository) -> None:
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "twin"),
        only=CLASSIFY_ONLY,
    )
    enricher = engine(repo, variants="none")
    try:
        assert enricher.variants == []
        assert all(r.variants == [] for r in enrich(enricher))
    finally:
        enricher.close()


def test_promote_when_must_name_a_figure_of_the_task(
    tmp_path: Path, repository: ModelRepository
) -> None:
    variant = variant_manifest(
        repository, "mobilenet_v2", "twin", promote_when={"character_error_rate": "<= 0.1"}
    )
    repo = with_variants(tmp_path, repository, variant, only=CLASSIFY_ONLY)
    with pytest.raises(EngineConfigError, match=r"character_error_rate.*top1_agreement"):
        engine(repo)


def test_a_variant_is_not_a_production_model(tmp_path: Path, repository: ModelRepository) -> None:
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "twin"),
        only=CLASSIFY_ONLY,
    )
    with pytest.raises(EngineConfigError, match="twin is a variant of mobilenet_v2"):
        engine(repo, models="twin")
    with pytest.raises(EngineConfigError, match="mobilenet_v2 is a production model"):
        engine(repo, variants="mobilenet_v2")


def test_the_ocr_cascade_skips_full_detection_where_its_first_look_finds_no_text(
    tmp_path: Path, repository: ModelRepository
) -> None:
    params = {"limit_side_len": 960, "limit_type": "max", "gate_side_len": 320}
    cascade = variant_manifest(repository, "ppocr_det", "cascade", params=params)
    repo = with_variants(tmp_path, repository, cascade, only=("ppocr_det", "ppocr_rec"))
    enricher = engine(repo, models="ppocr_det,ppocr_rec")
    try:
        (variant,) = enricher.variants
        sizes: list[int] = []
        detector = variant.runner.det  # type: ignore[attr-defined]
        run = detector.run

        def counted(feeds: dict[str, Any], *args: Any) -> Any:
            sizes.append(max(next(iter(feeds.values())).shape[2:]))
            return run(feeds, *args)

        detector.run = counted
        items = [PhotoInput(n, encode_jpeg(load_photo(n)), "u1") for n in ("sign", "chelsea")]
        sign, chelsea = enricher.enrich(items)
        assert isinstance(sign, Enriched) and isinstance(chelsea, Enriched)
        (read,) = sign.variants
        assert read.fields is not None and "OPEN 24 HOURS" in agreement_text(read.fields)
        assert read.figures["line_recall"] == 1.0
        assert read.model == {"name": "cascade", "version": "test-cascade"}  # not its runner's
        assert read.production["name"] == "ppocr_det"
        (blank,) = chelsea.variants
        assert blank.fields == {"ocr": []} and chelsea.fields["ocr"] == []
        # first looks at <= 320 px (a run per input size), then one full run: the sign's
        assert sizes[0] <= 320 and [s for s in sizes if s > 320] == [608]
    finally:
        enricher.close()


def agreement_text(fields: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in fields["ocr"])
