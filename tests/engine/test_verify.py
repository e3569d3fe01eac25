"""`darkroom models verify` enables each model's companions as the runners declare them."""

from __future__ import annotations

import shutil
from pathlib import Path

from streams.config import REPO_ROOT, load_settings
from streams.engine import verify
from streams.engine.runners import companions
from streams.inference.tasks import RUNNERS
from streams.models.build import build_model
from streams.models.manifest import Task
from streams.models.repository import ModelRepository
from tests.models.fake_runners import fake
from tests.models.tiny import write_embedder, write_manifest


def test_the_companion_table_is_what_the_runners_declare() -> None:
    assert companions() == verify._COMPANIONS
    assert companions() == {
        Task.EMBED_FACES: (Task.DETECT_FACES,),
        Task.OCR_DETECT: (Task.OCR_RECOGNIZE,),
        Task.OCR_RECOGNIZE: (Task.OCR_DETECT,),
    }
    # Restated straight from the declarations (no bundled runner requires a multi-task one).
    declared = {task: {*cls.tasks, *cls.requires} - {task} for cls in RUNNERS for task in cls.tasks}
    assert {t: set(c) for t, c in companions().items()} == {t: c for t, c in declared.items() if c}


def test_companions_follow_requirements_through_other_runners() -> None:
    declared = [
        fake("Embed", (Task.EMBED,)),
        fake("Faces", (Task.DETECT_FACES,), requires=(Task.EMBED,)),
        fake("FaceEmbed", (Task.EMBED_FACES,), requires=(Task.DETECT_FACES,)),
        fake("Ocr", (Task.OCR_DETECT, Task.OCR_RECOGNIZE), requires=(Task.EMBED,)),
    ]
    assert companions(declared) == {
        Task.DETECT_FACES: (Task.EMBED,),
        Task.EMBED_FACES: (Task.DETECT_FACES, Task.EMBED),
        Task.OCR_DETECT: (Task.OCR_RECOGNIZE, Task.EMBED),
        Task.OCR_RECOGNIZE: (Task.OCR_DETECT, Task.EMBED),
    }


def test_a_model_that_needs_another_is_verified_with_it(
    tmp_path: Path, repository: ModelRepository
) -> None:
    root = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models" / "blazeface", root / "blazeface")
    write_manifest(root / "my_arcface", "embed_faces", 112)
    write_embedder(root / "my_arcface" / "model.onnx", 112, 4, seed=2)
    toml = root / "my_arcface" / "model.toml"
    toml.write_text(toml.read_text() + '\n[[golden]]\nphoto = "astronaut"\nfaces = 1\n')
    repo = ModelRepository(root, repository.cache)  # blazeface is already built there
    build_model(repo, repo.get("my_arcface"))
    result = verify.verify_model(repo.get("my_arcface"), repo, load_settings().engine)
    assert result.passed, result.checks
    assert [c.description for c in result.checks] == ["loads and runs", "astronaut: 1 face(s)"]
