"""The engine's registry follows the runners' declarations, with no task named in its logic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.config import REPO_ROOT, load_settings
from streams.engine import Enriched, Enricher, PhotoInput
from streams.engine.runners import (
    DeclarationError,
    EngineConfigError,
    check_enabled,
    execution_order,
    open_runners,
    runner_of_task,
)
from streams.errors import UsageError
from streams.inference.sessions import SessionConfig
from streams.inference.tasks import RUNNERS
from streams.inference.tasks.classify import ClassifyRunner, EmbedRunner
from streams.inference.tasks.face_embed import FaceEmbedRunner
from streams.inference.tasks.faces import FaceDetectRunner
from streams.inference.tasks.moderate import ModerateRunner
from streams.inference.tasks.ocr import OcrRunner
from streams.models.build import build_model
from streams.models.manifest import Task
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo
from tests.models.fake_runners import FakeRunner, fake, manifest
from tests.models.tiny import write_embedder, write_manifest


def test_every_task_has_exactly_one_runner() -> None:
    # A task without a runner would let a manifest validate and then silently do nothing.
    assert set(runner_of_task()) == set(Task)


def test_the_bundled_runners_run_in_list_order_with_requirements_first() -> None:
    order = execution_order()
    assert order == [
        ClassifyRunner,
        EmbedRunner,
        FaceDetectRunner,
        FaceEmbedRunner,
        ModerateRunner,
        OcrRunner,
    ]
    owners = runner_of_task()
    for cls in RUNNERS:
        for task in cls.requires:
            assert order.index(owners[task]) < order.index(cls)


def test_a_runner_listed_before_what_it_requires_runs_after_it() -> None:
    first = fake("First", (Task.MODERATE,))
    needs = fake("Needs", (Task.EMBED_FACES,), requires=(Task.DETECT_FACES,))
    detector = fake("Detector", (Task.DETECT_FACES,))
    last = fake("Last", (Task.CLASSIFY,))
    assert execution_order([first, needs, detector, last]) == [first, detector, needs, last]


def test_contradicting_declarations_are_refused() -> None:
    a = fake("A", (Task.EMBED,), requires=(Task.CLASSIFY,))
    b = fake("B", (Task.CLASSIFY,), requires=(Task.EMBED,))
    with pytest.raises(DeclarationError, match="cycle: A, B"):
        execution_order([a, b])
    with pytest.raises(DeclarationError, match="A requires classify, which no runner runs"):
        execution_order([a])
    with pytest.raises(DeclarationError, match="A and C both declare task embed"):
        runner_of_task([a, fake("C", (Task.EMBED,))])
    with pytest.raises(DeclarationError, match="D declares no tasks"):
        runner_of_task([fake("D", ())])


def test_a_missing_requirement_is_a_config_error_naming_it() -> None:
    with pytest.raises(EngineConfigError, match="embed_faces needs a detect_faces model enabled"):
        check_enabled([manifest("arcface", Task.EMBED_FACES)])
    declared = [
        fake("Moderate", (Task.MODERATE,)),
        fake("Classify", (Task.CLASSIFY,), requires=(Task.MODERATE, Task.EMBED)),
        fake("Embed", (Task.EMBED,)),
    ]
    with pytest.raises(EngineConfigError, match="classify needs a moderate and an embed model"):
        check_enabled([manifest("c", Task.CLASSIFY)], declared)
    assert issubclass(EngineConfigError, UsageError)


def test_the_models_of_one_step_must_all_be_enabled() -> None:
    with pytest.raises(EngineConfigError, match="ocr_detect needs an ocr_recognize model"):
        check_enabled([manifest("det", Task.OCR_DETECT)])
    with pytest.raises(EngineConfigError, match="ocr_recognize needs an ocr_detect model"):
        check_enabled([manifest("rec", Task.OCR_RECOGNIZE)])


def test_two_models_of_one_task_are_refused() -> None:
    with pytest.raises(EngineConfigError, match="2 enabled models do classify: a, b"):
        check_enabled([manifest("a", Task.CLASSIFY), manifest("b", Task.CLASSIFY)])


def test_runners_get_their_manifests_in_task_order_and_defer_to_enabled_tasks() -> None:
    pair = fake("Pair", (Task.OCR_DETECT, Task.OCR_RECOGNIZE))
    classify = fake("Classify", (Task.CLASSIFY,), defers={"embedding": Task.EMBED})
    embed = fake("Embed", (Task.EMBED,))
    unused = fake("Unused", (Task.MODERATE,))
    declared = [pair, classify, embed, unused]
    manifests = [
        manifest("rec", Task.OCR_RECOGNIZE),
        manifest("clf", Task.CLASSIFY),
        manifest("det", Task.OCR_DETECT),
    ]
    repository = ModelRepository(REPO_ROOT / "models", Path("/nonexistent"))
    runners = open_runners(
        check_enabled(manifests, declared), repository, SessionConfig(), declared
    )
    assert [type(r) for r in runners] == [pair, classify]
    assert all(isinstance(r, FakeRunner) for r in runners)
    assert [m.name for m in runners[0].manifests] == ["det", "rec"]
    assert runners[1].deferred == frozenset()  # no embed model: the classifier embeds
    with_embed = check_enabled([*manifests, manifest("clip", Task.EMBED)], declared)
    runners = open_runners(with_embed, repository, SessionConfig(), declared)
    assert [type(r) for r in runners] == [pair, classify, embed]
    assert runners[1].deferred == frozenset({"embedding"})
    assert ClassifyRunner.defers == {"embedding": Task.EMBED}


def test_a_dedicated_embed_model_replaces_the_classifiers_embedding(
    tmp_path: Path, repository: ModelRepository
) -> None:
    root = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models" / "mobilenet_v2", root / "mobilenet_v2")
    write_manifest(root / "my_clip", "embed", 32)
    write_embedder(root / "my_clip" / "model.onnx", 32, 8, seed=1)
    repo = ModelRepository(root, repository.cache)  # mobilenet_v2 is already built there
    build_model(repo, repo.get("my_clip"))
    engine = Enricher(load_settings().engine, repo)
    try:
        (result,) = engine.enrich([PhotoInput("c", encode_jpeg(load_photo("chelsea")))])
    finally:
        engine.close()
    assert isinstance(result, Enriched)
    assert len(result.fields["embedding"]) == 8
    assert result.produced_by["embedding"]["name"] == "my_clip"
    assert result.produced_by["labels"]["name"] == "mobilenet_v2"
