"""Model repositories with variants, for tests: the project's models plus variant folders.

A test variant is a copy of a production manifest under another name, with ``variant_of`` and
``[rollout]``, and whatever changes the test wants (e.g. colour order swapped: the same weights
fed BGR disagree with production on some photos). Its ONNX file is production's built one,
copied at build time (converter "copy"), so no test pays for a conversion.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from streams.engine.build import build as build_model
from streams.models.repository import ModelRepository


def variant_manifest(
    base: ModelRepository,
    of: str,
    name: str,
    *,
    mode: str = "shadow",
    percent: float = 100,
    promote_when: dict[str, str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """Production model ``of``'s manifest as variant ``name`` (``changes``: top-level keys or
    ``input_<key>`` for the [input] table)."""
    production = base.get(of)
    manifest = tomllib.loads((production.folder / "model.toml").read_text(encoding="utf-8"))
    built = base.require_built(production).model
    manifest.update(name=name, version=f"test-{name}", variant_of=of)
    manifest["source"] = {"file": str(built), "converter": "copy"}
    manifest["golden"] = []
    if "tags" in manifest:  # the concept file stays where production's manifest has it
        manifest["tags"]["concepts"] = str(production.folder / manifest["tags"]["concepts"])
    manifest["rollout"] = {"mode": mode, "percent": percent}
    if promote_when:
        manifest["rollout"]["promote_when"] = promote_when
    for key, value in changes.items():
        if key.startswith("input_"):
            manifest["input"][key.removeprefix("input_")] = value
        else:
            manifest[key] = value
    return manifest


def with_variants(
    tmp: Path, base: ModelRepository, *variants: dict[str, Any], only: tuple[str, ...] = ()
) -> ModelRepository:
    """A repository under ``tmp`` of ``base``'s production models (or ``only`` those) and
    ``variants``, each variant built; production models share ``base``'s built files."""
    root, cache = tmp / "models", tmp / "model-cache"
    root.mkdir(parents=True)
    cache.mkdir(parents=True)
    for manifest in base.production():
        if only and manifest.name not in only:
            continue
        shutil.copytree(manifest.folder, root / manifest.name)  # model.toml and its data files
        (cache / manifest.name).symlink_to(base.cache / manifest.name)
    for variant in variants:
        folder = root / variant["name"]
        folder.mkdir()
        (folder / "model.toml").write_text(tomlkit.dumps(variant), encoding="utf-8")
    repository = ModelRepository(root, cache)
    for manifest in repository.variants():
        build_model(repository, manifest)
    return repository
