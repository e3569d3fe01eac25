"""Promotion edits the manifests: the variant becomes production, the old model is retired."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.engine.runners import check_enabled
from streams.experiments.promote import NotAVariantError, promote
from streams.models.repository import ModelRepository
from tests.variants import variant_manifest, with_variants


def test_promote_and_roll_back(tmp_path: Path, repository: ModelRepository) -> None:
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "fast"),
        variant_manifest(repository, "mobilenet_v2", "other", percent=5),
        only=("mobilenet_v2",),
    )
    production_file = repo.get("mobilenet_v2").folder / "model.toml"
    production_file.write_text("# kept by promote\n" + production_file.read_text())

    promotion = promote(repo, "fast")
    assert promotion.moved == ["other"] and not promotion.rollback
    after = ModelRepository(repo.root, repo.cache)
    assert [m.name for m in after.production()] == ["fast"]
    old = after.get("mobilenet_v2")
    assert old.variant_of == "fast" and old.rollout is not None and old.rollout.mode == "retired"
    assert after.get("other").variant_of == "fast"
    assert production_file.read_text().startswith("# kept by promote\n")  # comments survive
    assert check_enabled(after.production())  # one model per task: an engine can load it

    back = promote(after, "mobilenet_v2")
    assert back.rollback
    again = ModelRepository(repo.root, repo.cache)
    assert [m.name for m in again.production()] == ["mobilenet_v2"]
    assert {m.name: m.variant_of for m in again.variants()} == {
        "fast": "mobilenet_v2",
        "other": "mobilenet_v2",
    }
    fast = again.get("fast")
    assert fast.rollout is not None and fast.rollout.mode == "retired"


def test_production_cannot_be_promoted(tmp_path: Path, repository: ModelRepository) -> None:
    repo = with_variants(tmp_path, repository, only=("mobilenet_v2",))
    with pytest.raises(NotAVariantError, match="production model already"):
        promote(repo, "mobilenet_v2")
