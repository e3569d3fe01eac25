"""Variants in the engine: shadow runs beside production, canary serves, failures stay measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from streams.config import load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.engine.runners import EngineConfigError
from streams.engine.variants import VariantRun, VariantWatch
from streams.engine.verify import verify_model
from streams.inference.text_gate import train
from streams.models.manifest import Task
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
        assert enricher.model_versions_for(inside[0]) == {
            "bgr": "test-bgr",
            "darkroom-thumbnails": "1",
        }
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
    cascade = variant_manifest(repository, "ppocr_det_gated", "cascade", params=params)
    repo = with_variants(tmp_path, repository, cascade, only=("ppocr_det_gated", "ppocr_rec"))
    enricher = engine(repo, models="ppocr_det_gated,ppocr_rec")
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
        assert read.production["name"] == "ppocr_det_gated"
        (blank,) = chelsea.variants
        assert blank.fields == {"ocr": []} and chelsea.fields["ocr"] == []
        # first looks at <= 320 px (a run per input size), then one full run: the sign's
        assert sizes[0] <= 320 and [s for s in sizes if s > 320] == [608]
    finally:
        enricher.close()


def agreement_text(fields: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in fields["ocr"])


def narrower_embedding(repository: ModelRepository, folder: Path, width: int) -> Path:
    """mobilenet_v2's graph with its embedding cut to its first ``width`` values: a real model
    whose embedding is as wide as a CLIP-style one (512), where production's is 1280."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(repository.require_built(repository.get("mobilenet_v2")).model))
    graph = model.graph
    starts, ends, axes = (
        numpy_helper.from_array(np.array(v, dtype=np.int64), name)
        for v, name in (([0], "cut_start"), ([width], "cut_end"), ([1], "cut_axis"))
    )
    graph.initializer.extend([starts, ends, axes])
    graph.node.append(
        helper.make_node(
            "Slice", ["embedding", "cut_start", "cut_end", "cut_axis"], ["embedding_cut"]
        )
    )
    kept = [o for o in graph.output if o.name != "embedding"]
    del graph.output[:]
    graph.output.extend(kept)
    graph.output.append(
        helper.make_tensor_value_info("embedding_cut", onnx.TensorProto.FLOAT, None)
    )
    path = folder / f"mobilenet_v2_{width}.onnx"
    onnx.save(model, str(path))
    return path


def clip_width_canary(repository: ModelRepository, folder: Path, percent: float) -> dict[str, Any]:
    """A canary of mobilenet_v2 whose embedding is 512 wide (``narrower_embedding``)."""
    return variant_manifest(
        repository,
        "mobilenet_v2",
        "clip_width",
        mode="canary",
        percent=percent,
        source={"file": str(narrower_embedding(repository, folder, 512)), "converter": "copy"},
        outputs={"logits": "logits", "embedding": "embedding_cut"},
    )


def test_a_canary_with_another_embedding_width_is_never_served(
    tmp_path: Path, repository: ModelRepository
) -> None:
    """A 512-d canary of the 1280-d model: served, it stopped a partition for good (its
    embedding met the user's 1280-d ones in the near-duplicate search); now it fails the
    variant for each photo and production is served."""
    canary = clip_width_canary(repository, tmp_path, percent=100)
    enricher = engine(with_variants(tmp_path / "repo", repository, canary, only=CLASSIFY_ONLY))
    try:
        for result in enrich(enricher):
            (run,) = result.variants
            assert run.fields is None
            assert run.error == "contract: embedding: width 512, production 1280"
            assert len(result.fields["embedding"]) == 1280
            assert result.produced_by["embedding"]["name"] == "mobilenet_v2"
            assert result.produced_by["labels"]["name"] == "mobilenet_v2"
    finally:
        enricher.close()


def test_models_verify_refuses_a_variant_whose_outputs_production_consumers_cannot_read(
    tmp_path: Path, repository: ModelRepository
) -> None:
    repo = with_variants(
        tmp_path / "repo",
        repository,
        variant_manifest(repository, "mobilenet_v2", "twin"),  # a shadow: one canary at a time
        clip_width_canary(repository, tmp_path, percent=5),
        only=CLASSIFY_ONLY,
    )
    settings = load_settings().engine

    def contract(name: str) -> tuple[bool, str]:
        result = verify_model(repo.get(name), repo, settings)
        (check,) = [c for c in result.checks if c.description.startswith("outputs read like")]
        return check.passed, check.seen

    assert contract("twin") == (True, "as mobilenet_v2's")
    assert contract("clip_width") == (False, "embedding: width 512, production 1280")
    assert not verify_model(repo.get("clip_width"), repo, settings).passed


def test_a_variant_that_keeps_failing_is_switched_off(
    tmp_path: Path, repository: ModelRepository
) -> None:
    broken = variant_manifest(
        repository, "mobilenet_v2", "broken", mode="canary", percent=100, params={"top_k": "x"}
    )
    repo = with_variants(tmp_path, repository, broken, only=CLASSIFY_ONLY)
    enricher = engine(repo, variant_min_photos=4, variant_max_failure_share=0.5)
    try:
        first = enrich(enricher)  # five photos, every one a failure of the variant
        assert all(len(result.variants) == 1 for result in first)
        assert enricher.watch.switched_off == {"broken": "failed on 5 of 5 photos"}
        assert enricher.variants == []
        assert enricher.model_versions_for("u1") == enricher.model_versions  # production serves
        assert all(result.variants == [] for result in enrich(enricher))
    finally:
        enricher.close()


def test_a_variant_failing_now_and_then_stays_on() -> None:
    def runs(failures: int, photos: int) -> list[VariantRun]:
        return [
            VariantRun("v", "shadow", Task.CLASSIFY, {}, {}, {}, 1.0, 1,
                       error="boom" if i < failures else None)
            for i in range(photos)
        ]  # fmt: skip

    watch = VariantWatch(max_failure_share=0.5, min_photos=10)
    named: list[Any] = [SimpleNamespace(name="v")]  # only its name is read
    assert watch.prune(named, runs(4, 9)) == named  # too few photos to judge
    assert watch.prune(named, runs(1, 1)) == named  # 5 of 10: not more than half
    assert watch.prune(named, runs(9, 9)) == []  # 14 of 19
    assert watch.switched_off == {"v": "failed on 14 of 19 photos"}


class Unreadable(list[str]):
    """Labels that break the post-processing (they cannot be read by index)."""

    def __getitem__(self, index: Any) -> Any:
        raise IndexError("labels table damaged")


def _raise(what: str) -> Any:
    def raising(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{what} exploded")

    return raising


@pytest.mark.parametrize(
    ("stage", "attribute", "replacement", "error"),
    [
        ("preprocess", "prepare", _raise("prepare"), "preprocess: RuntimeError"),
        ("inference", "infer", _raise("infer"), "RuntimeError('infer exploded')"),
        ("post-processing", "labels", Unreadable(["cat"] * 2000), "labels table damaged"),
        ("agreement figures", "compare", _raise("compare"), "compare: RuntimeError"),
    ],
)
def test_a_canary_that_raises_at_any_stage_costs_no_photo(
    tmp_path: Path,
    repository: ModelRepository,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    attribute: str,
    replacement: Any,
    error: str,
) -> None:
    canary = variant_manifest(repository, "mobilenet_v2", "v", mode="canary", percent=100)
    enricher = engine(with_variants(tmp_path, repository, canary, only=CLASSIFY_ONLY))
    try:
        (variant,) = enricher.variants
        target = type(variant.runner) if attribute == "compare" else variant.runner
        monkeypatch.setattr(target, attribute, replacement)
        for result in enrich(enricher):  # every photo enriched: none failed for the variant
            (run,) = result.variants
            assert run.fields is None and error in (run.error or ""), (stage, run.error)
            assert result.produced_by["labels"]["name"] == "mobilenet_v2"  # production served
            assert result.fields["labels"] and len(result.fields["embedding"]) == 1280
    finally:
        enricher.close()


def test_a_learned_text_gate_sends_only_the_photos_it_passes_to_ocr(
    tmp_path: Path, repository: ModelRepository
) -> None:
    # a gate that passes what the classifier's embedding of the sign scores above the cat's:
    # trained on these two photos' own embeddings (a stand-in for the stream's)
    embedder = engine(repository, models="mobilenet_v2", variants="none")
    items = [PhotoInput(n, encode_jpeg(load_photo(n)), "u1") for n in ("sign", "chelsea")]
    found = embedder.enrich(items)
    embedder.close()
    vectors = np.asarray([r.fields["embedding"] for r in found])  # type: ignore[union-attr]
    gate = train(np.tile(vectors, (6, 1)), [1, 0] * 6, folds=3)
    gate.save(tmp_path / "gate.json")
    params = {"limit_side_len": 960, "limit_type": "max", "text_gate": str(tmp_path / "gate.json")}
    gated = variant_manifest(repository, "ppocr_det_gated", "gated", params=params)
    only = ("mobilenet_v2", "ppocr_det_gated", "ppocr_rec")
    repo = with_variants(tmp_path / "repo", repository, gated, only=only)
    enricher = engine(repo, models=",".join(only))
    try:
        (variant,) = enricher.variants
        detector = variant.runner.det  # type: ignore[attr-defined]
        runs: list[int] = []
        run = detector.run

        def counted(feeds: dict[str, Any], *args: Any) -> Any:
            runs.append(len(next(iter(feeds.values()))))
            return run(feeds, *args)

        detector.run = counted
        sign, chelsea = enricher.enrich(items)
        assert isinstance(sign, Enriched) and isinstance(chelsea, Enriched)
        (read,) = sign.variants
        assert read.fields is not None and "OPEN 24 HOURS" in agreement_text(read.fields)
        (blank,) = chelsea.variants
        assert blank.fields == {"ocr": []} and chelsea.fields["ocr"] == []
        assert runs == [1]  # the sign alone was detected: the cat never reached the detector
    finally:
        enricher.close()
