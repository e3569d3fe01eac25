"""Tasks without a bundled model (CLIP-style embeddings, face embeddings) work from a manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from streams.config import REPO_ROOT, load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.models.build import build_model
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo
from tests.models.tiny import write_embedder, write_manifest


def test_dropped_in_embedding_models_run(tmp_path: Path, repository: ModelRepository) -> None:
    root = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models" / "blazeface", root / "blazeface")
    write_manifest(root / "my_clip", "embed", 32)
    write_embedder(root / "my_clip" / "model.onnx", 32, 8, seed=1)
    write_manifest(root / "my_arcface", "embed_faces", 112)
    write_embedder(root / "my_arcface" / "model.onnx", 112, 4, seed=2)
    repo = ModelRepository(root, repository.cache)  # blazeface is already built there
    for manifest in repo.manifests():
        build_model(repo, manifest)
    engine = Enricher(load_settings().engine, repo)
    try:
        (result,) = engine.enrich([PhotoInput("a", encode_jpeg(load_photo("astronaut")))])
    finally:
        engine.close()
    assert isinstance(result, Enriched)
    assert len(result.fields["embedding"]) == 8
    assert abs(np.linalg.norm(result.fields["embedding"]) - 1) < 1e-5
    (face,) = result.fields["faces"]
    assert len(face["embedding"]) == 4
    assert result.produced_by["embedding"] == {"name": "my_clip", "version": "test-1"}
    assert result.produced_by["faces.embedding"]["name"] == "my_arcface"
    assert result.produced_by["faces"]["name"] == "blazeface"
