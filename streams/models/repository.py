"""The model repository on disk: manifests in ``models/``, built artifacts in the cache.

Artifacts of a model live in ``<cache>/<name>/<version>/``: ``model.onnx``, ``labels.txt`` (when
the model has labels) and ``build.json`` (what it was built from). A new version never
overwrites an old one, so a worker running the old version is never handed a half-written file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.errors import SetupError, UsageError
from streams.logs import get_logger
from streams.models.manifest import ManifestError, ModelManifest, Rollout, Task, load_manifest
from streams.models.tags import TagTable

log = get_logger("darkroom.models")
VARIANT_LINE = re.compile(r"^\s*variant_of\s*=", re.MULTILINE)


def names_a_variant(folder: Path) -> bool:
    """Whether ``folder``'s manifest, however broken, says it is an experiment (a variant_of
    line): what tells an experiment's broken manifest from a production model's."""
    try:
        return VARIANT_LINE.search((folder / "model.toml").read_text(errors="replace")) is not None
    except OSError:
        return False


class UnknownModelError(UsageError):
    """A model name that is not in the repository."""


class ModelNotBuiltError(SetupError):
    """A model whose ONNX file has not been built yet."""


@dataclass(frozen=True)
class Artifacts:
    """The built files of one model version."""

    folder: Path

    @property
    def model(self) -> Path:
        """The ONNX graph."""
        return self.folder / "model.onnx"

    @property
    def labels(self) -> Path:
        """One class name per line (only for models with labels)."""
        return self.folder / "labels.txt"

    @property
    def tags(self) -> Path:
        """tags.json: each class's concepts (only for models with [tags])."""
        return self.folder / "tags.json"

    @property
    def record(self) -> Path:
        """build.json: source SHA-256, converter, build time."""
        return self.folder / "build.json"

    def build_info(self) -> dict[str, Any] | None:
        """The build record, or None when not built (or half built)."""
        if not self.model.is_file():
            return None
        try:
            info: dict[str, Any] = json.loads(self.record.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return info

    def read_labels(self) -> list[str]:
        """The labels written at build time."""
        return self.labels.read_text(encoding="utf-8").splitlines()

    def read_tags(self) -> TagTable:
        """The tag table written at build time."""
        return TagTable.from_json(json.loads(self.tags.read_text(encoding="utf-8")))


class ModelRepository:
    """Every model folder under ``root``, and where their builds go."""

    def __init__(self, root: Path, cache: Path) -> None:
        """A production model's broken manifest raises ManifestError (nothing can serve without
        it); an experiment's (a variant's) disables that experiment alone, named with its reason
        in ``disabled`` and the log: one bad folder must not stop every worker."""
        self.root = root
        self.cache = cache
        self.disabled: dict[str, str] = {}  # experiment folder -> why it is not served
        if not root.is_dir():
            raise ManifestError(f"model repository {root} does not exist")
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self._manifests = {}
        for folder in folders:
            try:
                manifest = load_manifest(folder)
            except ManifestError as error:
                if not names_a_variant(folder):
                    raise
                self._disable(folder.name, str(error))
            else:
                self._manifests[manifest.name] = manifest
        for manifest in list(self._manifests.values()):  # by name: the first canary stays
            try:
                self._check_variant(manifest)
            except ManifestError as error:
                del self._manifests[manifest.name]
                self._disable(manifest.name, str(error))

    def _disable(self, name: str, why: str) -> None:
        self.disabled[name] = why
        log.error("experiment disabled: its manifest is broken", experiment=name, why=why)

    def _check_variant(self, manifest: ModelManifest) -> None:
        if manifest.variant_of is None:
            return
        where = f"{manifest.folder / 'model.toml'}"
        base = self._manifests.get(manifest.variant_of)
        if base is None:
            raise ManifestError(f"{where}: variant_of {manifest.variant_of!r} is not a model here")
        if base.is_variant:
            raise ManifestError(
                f"{where}: variant_of {base.name!r}, which is itself a variant of "
                f"{base.variant_of!r}; name the production model"
            )
        if base.task is not manifest.task:
            raise ManifestError(
                f"{where}: a variant does the task of its production model "
                f"({base.name} does {base.task}, this does {manifest.task})"
            )
        assert manifest.rollout is not None
        if manifest.rollout.mode == "canary":
            others = [
                m.name
                for m in self._manifests.values()
                if m.variant_of == base.name
                and m.rollout is not None
                and m.rollout.mode == "canary"
                and m.name < manifest.name  # the first by name is the one served
            ]
            if others:
                raise ManifestError(
                    f"{where}: {base.name} already has a canary ({', '.join(others)}); a user "
                    "can be served by one variant at a time"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRepository:
        """The repository and build cache ``settings`` configure."""
        return cls(settings.paths.models, settings.paths.model_cache)

    def manifests(self, task: Task | None = None) -> list[ModelManifest]:
        """All manifests (of one task, if given), by name."""
        return [m for m in self._manifests.values() if task is None or m.task is task]

    def production(self) -> list[ModelManifest]:
        """The models that serve events (every manifest that is not a variant), by name."""
        return [m for m in self._manifests.values() if not m.is_variant]

    def variants(self, of: str | None = None) -> list[ModelManifest]:
        """The variants (of the production model ``of``, if given), by name."""
        return [m for m in self._manifests.values() if m.is_variant and of in (None, m.variant_of)]

    def as_production(self, name: str) -> ModelRepository:
        """This repository as if variant ``name`` were promoted, in memory only (to verify a
        variant's golden checks, it runs where its production model would)."""
        variant = self.get(name)
        if variant.variant_of is None:
            return self
        view = object.__new__(ModelRepository)
        view.root, view.cache, view.disabled = self.root, self.cache, self.disabled
        view._manifests = {
            **self._manifests,
            name: variant.model_copy(update={"variant_of": None, "rollout": None}),
            variant.variant_of: self._manifests[variant.variant_of].model_copy(
                update={"variant_of": name, "rollout": Rollout(mode="retired")}
            ),
        }
        return view

    def get(self, name: str) -> ModelManifest:
        """The manifest called ``name``."""
        try:
            return self._manifests[name]
        except KeyError:
            if name in self.disabled:
                why = self.disabled[name]
                raise ManifestError(f"experiment {name!r} is disabled: {why}") from None
            known = ", ".join(self._manifests) or "none"
            raise UnknownModelError(f"no model {name!r} in {self.root} (models: {known})") from None

    def artifacts(self, manifest: ModelManifest) -> Artifacts:
        """Where ``manifest``'s version is (or will be) built."""
        return Artifacts(self.cache / manifest.name / manifest.version)

    def require_built(self, manifest: ModelManifest) -> Artifacts:
        """The artifacts, or ModelNotBuiltError saying how to build them."""
        artifacts = self.artifacts(manifest)
        if artifacts.build_info() is None:
            raise ModelNotBuiltError(
                f"model {manifest.key} is not built (no {artifacts.model}): "
                "run `darkroom models build`"
            )
        return artifacts
