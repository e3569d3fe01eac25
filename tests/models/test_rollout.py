"""Variant manifests and the traffic split: stable, proportional, independent per variant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.config import load_settings, settings_env
from streams.models.manifest import Criterion, ManifestError, ModelManifest
from streams.models.repository import ModelRepository
from streams.models.rollout import bucket, in_rollout
from tests.cli.runner import darkroom
from tests.variants import variant_manifest, with_variants

USERS = [f"user-{i}" for i in range(20_000)]


def test_the_split_is_a_pure_function_of_variant_and_user() -> None:
    # Pinned: a change here would move users between arms in the middle of an experiment
    # (workers of two releases side by side during a rolling upgrade).
    assert [bucket("v", u) for u in ("u1", "u2", "u3")] == [9438, 4624, 1756]
    assert bucket("mobilenet_v2_int8", "u1") == 5381


def test_percent_is_the_share_of_users_and_growing_it_keeps_them(
    repository: ModelRepository,
) -> None:
    def sampled(percent: float, name: str = "v") -> set[str]:
        manifest = variant_manifest(repository, "mobilenet_v2", name, percent=percent)
        model = ModelManifest.model_validate(manifest)
        return {u for u in USERS if in_rollout(model, u)}

    ten, twenty = sampled(10), sampled(20)
    assert abs(len(ten) / len(USERS) - 0.10) < 0.01
    assert abs(len(twenty) / len(USERS) - 0.20) < 0.01
    assert ten <= twenty  # raising a canary never takes a user out of it
    other = sampled(10, "w")
    overlap = len(ten & other) / len(ten)
    assert abs(overlap - 0.10) < 0.03  # another experiment samples independently


def test_retired_runs_for_nobody(repository: ModelRepository) -> None:
    manifest = variant_manifest(repository, "mobilenet_v2", "old", mode="retired", percent=0)
    model = ModelManifest.model_validate(manifest)
    assert not any(in_rollout(model, u) for u in USERS[:1000])


def test_criteria_parse_and_hold() -> None:
    assert Criterion.model_validate(">= 0.95").holds(0.95)
    assert not Criterion.model_validate("> 0.95").holds(0.95)
    assert Criterion.model_validate("<=0.8").holds(0.5)
    assert str(Criterion.model_validate("< 1.5")) == "< 1.5"
    with pytest.raises(ValueError, match="is not a criterion"):
        Criterion.model_validate("about 0.9")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variant_of": "nope"}, "variant_of 'nope' is not a model here"),
        ({"task": "moderate"}, "a variant does the task of its production model"),
        ({"rollout": {"mode": "shadow", "percent": 0}}, "needs percent > 0"),
        ({"rollout": {"mode": "live", "percent": 5}}, "rollout.mode"),
        (
            {"rollout": {"mode": "shadow", "percent": 5, "promote_when": {"x": "~ 1"}}},
            "is not a criterion",
        ),
    ],
)
def test_a_bad_variant_is_disabled_with_a_reason_and_production_stays(
    tmp_path: Path, repository: ModelRepository, changes: dict[str, object], message: str
) -> None:
    variant = {**variant_manifest(repository, "mobilenet_v2", "v"), **changes}
    repo = with_variants(tmp_path, repository, variant, only=("mobilenet_v2",))
    assert re.search(message, repo.disabled["v"])
    assert not repo.variants() and [m.name for m in repo.production()] == ["mobilenet_v2"]
    with pytest.raises(ManifestError, match="experiment 'v' is disabled"):
        repo.get("v")  # `darkroom models verify v` says why


def test_a_variant_of_a_variant_and_a_second_canary_are_disabled(
    tmp_path: Path, repository: ModelRepository
) -> None:
    first = variant_manifest(repository, "mobilenet_v2", "a")
    second = {**variant_manifest(repository, "mobilenet_v2", "b"), "variant_of": "a"}
    repo = with_variants(tmp_path / "1", repository, first, second, only=("mobilenet_v2",))
    assert "itself a variant" in repo.disabled["b"] and [m.name for m in repo.variants()] == ["a"]
    canaries = [
        variant_manifest(repository, "mobilenet_v2", n, mode="canary", percent=5) for n in "ab"
    ]
    repo = with_variants(tmp_path / "2", repository, *canaries, only=("mobilenet_v2",))
    assert "already has a canary (a)" in repo.disabled["b"]
    assert [m.name for m in repo.variants()] == ["a"]


def test_an_unreadable_experiment_is_disabled_but_a_broken_production_model_stops_the_start(
    tmp_path: Path, repository: ModelRepository
) -> None:
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "v"),
        only=("mobilenet_v2",),
    )
    manifest = repo.root / "v" / "model.toml"
    manifest.write_text(manifest.read_text() + "\n[rollout\nthis is not toml")
    reread = ModelRepository(repo.root, repo.cache)
    assert "v" in reread.disabled and [m.name for m in reread.production()] == ["mobilenet_v2"]
    settings = load_settings()
    paths = settings.paths.model_copy(update={"models": repo.root, "model_cache": repo.cache})
    listed = darkroom(
        "models", "list", env=settings_env(settings.model_copy(update={"paths": paths}))
    )
    assert listed.exit_code == 0 and "disabled" in listed.stdout
    production = repo.root / "mobilenet_v2" / "model.toml"
    production.write_text(production.read_text() + "\nversion = 'twice'")
    with pytest.raises(ManifestError, match="mobilenet_v2"):
        ModelRepository(repo.root, repo.cache)


def test_production_and_variants_are_told_apart(
    tmp_path: Path, repository: ModelRepository
) -> None:
    repo = with_variants(
        tmp_path,
        repository,
        variant_manifest(repository, "mobilenet_v2", "v"),
        only=("mobilenet_v2", "open_nsfw_int8"),
    )
    assert [m.name for m in repo.production()] == ["mobilenet_v2", "open_nsfw_int8"]
    assert [m.name for m in repo.variants()] == ["v"]
    assert [m.name for m in repo.variants(of="open_nsfw_int8")] == []
