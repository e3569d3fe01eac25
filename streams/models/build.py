"""`darkroom models build`: turn each manifest's source into ONNX files in the cache, offline.

Idempotent: a model whose build record names the same source SHA-256 and converter is skipped.
A build is written to a temporary folder and renamed into place, so a crash never leaves a
half-written model where a worker would load it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams import __version__
from streams.errors import OperationError
from streams.models import tags
from streams.models.converters import CONVERTERS
from streams.models.manifest import ModelManifest
from streams.models.repository import ModelRepository
from streams.models.sources import load_labels, locate_source, sha256_file
from streams.models.wordnet import WordNetError


class BuildError(OperationError):
    """A converter failed on its source (the build ran; this model's part of it did not)."""


# fp32 graph, where model.onnx goes, the manifest: writes the quantized graph (the engine's
# streams/engine/build.py has the one that knows each task's calibration inputs)
Quantizer = Callable[[Path, Path, ModelManifest], None]


@dataclass(frozen=True)
class BuildResult:
    """What happened to one model."""

    manifest: ModelManifest
    built: bool  # False: an identical build was already there
    path: Path
    seconds: float


def build_model(
    repository: ModelRepository,
    manifest: ModelManifest,
    force: bool = False,
    quantizer: Quantizer | None = None,
) -> BuildResult:
    """Build one model (MissingSourceError / SourceMismatchError / BuildError on failure).
    A manifest with [quantize] needs ``quantizer`` (use streams.engine.build.build)."""
    started = time.monotonic()
    if manifest.quantize is not None and quantizer is None:
        raise BuildError(f"{manifest.key} is quantized at build: build it with streams.engine")
    source = locate_source(manifest)
    source_sha = sha256_file(source)
    artifacts = repository.artifacts(manifest)
    info = artifacts.build_info()
    wanted = {
        "source_sha256": source_sha,
        "converter": manifest.source.converter,
        "quantize": manifest.quantize.model_dump() if manifest.quantize else None,
        "tags": tags.fingerprint(manifest.tags, manifest.folder) if manifest.tags else None,
    }
    if not force and info is not None and all(info.get(k) == v for k, v in wanted.items()):
        return BuildResult(manifest, False, artifacts.model, time.monotonic() - started)

    artifacts.folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{manifest.version}-", dir=artifacts.folder.parent))
    try:
        converted = staging / ("fp32.onnx" if quantizer and manifest.quantize else "model.onnx")
        try:
            CONVERTERS[manifest.source.converter](source, converted)
        except Exception as exc:
            raise BuildError(f"{manifest.key}: {manifest.source.converter} failed: {exc}") from exc
        if quantizer is not None and manifest.quantize is not None:
            try:
                quantizer(converted, staging / "model.onnx", manifest)
            except Exception as exc:
                raise BuildError(f"{manifest.key}: quantization failed: {exc}") from exc
            converted.unlink()
        if manifest.labels is not None:
            labels = load_labels(manifest.labels, manifest.folder)
            (staging / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        if manifest.tags is not None:
            try:
                table = tags.build_for(manifest.tags, manifest.folder)
            except WordNetError as exc:
                raise BuildError(f"{manifest.key}: tags: {exc}") from exc
            (staging / "tags.json").write_text(json.dumps(table.to_json()), encoding="utf-8")
        record = {
            **wanted,
            "source": str(source),
            "built_at": time.time(),
            "darkroom": __version__,
            "onnx_sha256": sha256_file(staging / "model.onnx"),
        }
        (staging / "build.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        if artifacts.folder.exists():
            shutil.rmtree(artifacts.folder)
        staging.rename(artifacts.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(manifest, True, artifacts.model, time.monotonic() - started)
