"""`darkroom models promote NAME`: a variant becomes production; the old model stays, retired.

Promotion is an edit of the manifests, so ``git diff models/`` shows it and a revert undoes it:

- the variant loses ``variant_of`` and ``[rollout]``: it is production now;
- the old production model gains ``variant_of = NAME`` and ``[rollout] mode = "retired"``: it
  runs for nobody, its built files stay in the cache, and promoting it back is the rollback;
- the old model's other variants become variants of NAME.

Workers read the manifests when they start: a rolling restart puts the promotion into effect,
and `darkroom replay --reprocess --stale-models` backfills the photos enriched before it.
Files are edited with tomlkit (comments and layout kept), every new text is validated before
any file is replaced, and each is replaced atomically.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from streams.errors import UsageError
from streams.models.manifest import ModelManifest
from streams.models.repository import ModelRepository


class NotAVariantError(UsageError):
    """Promoting a model that is production already."""


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed."""

    promoted: ModelManifest  # as it was (a variant)
    retired: ModelManifest  # the production model it replaced
    moved: list[str]  # other variants now pointing at the promoted model
    files: list[Path]

    @property
    def rollback(self) -> bool:
        """The promoted model was a retired one: this undid an earlier promotion."""
        assert self.promoted.rollout is not None
        return self.promoted.rollout.mode == "retired"


def plan(repository: ModelRepository, name: str) -> dict[Path, str]:
    """The new text of every manifest a promotion of ``name`` changes (nothing written)."""
    variant = repository.get(name)
    if variant.variant_of is None:
        raise NotAVariantError(f"{name} is a production model already")
    old = repository.get(variant.variant_of)
    texts: dict[Path, str] = {}

    doc = _read(variant)
    doc.remove("variant_of")
    doc.remove("rollout")
    texts[_path(variant)] = tomlkit.dumps(doc)

    doc = _read(old)
    doc["variant_of"] = name
    rollout = tomlkit.table()
    rollout["mode"] = "retired"
    rollout.comment(f"production until {name} was promoted; promote it back to roll back")
    doc["rollout"] = rollout
    texts[_path(old)] = tomlkit.dumps(doc)

    for other in repository.variants(of=old.name):
        if other.name != name:
            doc = _read(other)
            doc["variant_of"] = name
            texts[_path(other)] = tomlkit.dumps(doc)
    return texts


def promote(repository: ModelRepository, name: str) -> Promotion:
    """Make variant ``name`` production (see the module's doc); returns what changed."""
    variant = repository.get(name)
    texts = plan(repository, name)
    _check(repository, texts)  # a bug in an edit must not reach a file
    for path, text in texts.items():
        _replace(path, text)
    assert variant.variant_of is not None
    moved = [m.name for m in repository.variants(of=variant.variant_of) if m.name != name]
    return Promotion(variant, repository.get(variant.variant_of), moved, list(texts))


def _check(repository: ModelRepository, texts: dict[Path, str]) -> None:
    """Load the whole repository as it would be after the edits (a copy of the manifests)."""
    with tempfile.TemporaryDirectory(prefix="darkroom-promote-") as scratch:
        for manifest in repository.manifests():
            folder = Path(scratch) / manifest.name
            folder.mkdir()
            source = _path(manifest)
            text = texts.get(source) or source.read_text(encoding="utf-8")
            (folder / "model.toml").write_text(text, encoding="utf-8")
        ModelRepository(Path(scratch), repository.cache)


def _read(manifest: ModelManifest) -> tomlkit.TOMLDocument:
    return tomlkit.parse(_path(manifest).read_text(encoding="utf-8"))


def _path(manifest: ModelManifest) -> Path:
    return manifest.folder / "model.toml"


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one)."""
    handle, staging = tempfile.mkstemp(prefix=".model.toml-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(staging).replace(path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
