"""Which task runners an engine runs, in which order, from the settings and the repository."""

from __future__ import annotations

from streams.config import EngineSettings
from streams.inference.sessions import SessionConfig
from streams.inference.tasks.base import Runner, TaskRunner
from streams.inference.tasks.classify import ClassifyRunner, EmbedRunner
from streams.inference.tasks.face_embed import FaceEmbedRunner
from streams.inference.tasks.faces import FaceDetectRunner
from streams.inference.tasks.moderate import ModerateRunner
from streams.inference.tasks.ocr import OcrRunner
from streams.models.manifest import ModelManifest, Task
from streams.models.repository import ModelRepository


class EngineConfigError(ValueError):
    """The enabled models cannot work together (e.g. two models fill the same field)."""


# Order matters: face embeddings need faces; everything else is independent.
_SINGLE: list[tuple[Task, type[TaskRunner]]] = [
    (Task.CLASSIFY, ClassifyRunner),
    (Task.EMBED, EmbedRunner),
    (Task.DETECT_FACES, FaceDetectRunner),
    (Task.EMBED_FACES, FaceEmbedRunner),
    (Task.MODERATE, ModerateRunner),
]


def enabled_manifests(settings: EngineSettings, repository: ModelRepository) -> list[ModelManifest]:
    """The manifests named by ``settings.models`` ('all' = every model in the repository)."""
    if settings.models.strip().lower() == "all":
        return repository.manifests()
    names = [n.strip() for n in settings.models.split(",") if n.strip()]
    return [repository.get(name) for name in names]


def load_runners(settings: EngineSettings, repository: ModelRepository) -> list[Runner]:
    """Open a session for every enabled model and return the runners in execution order."""
    manifests = enabled_manifests(settings, repository)
    by_task: dict[Task, list[ModelManifest]] = {}
    for manifest in manifests:
        by_task.setdefault(manifest.task, []).append(manifest)
    for task, group in by_task.items():
        if len(group) > 1:
            raise EngineConfigError(
                f"{len(group)} enabled models do {task}: {', '.join(m.name for m in group)}; "
                "name the ones to run in DARKROOM_ENGINE_MODELS"
            )
    if Task.EMBED_FACES in by_task and Task.DETECT_FACES not in by_task:
        raise EngineConfigError("embed_faces needs a detect_faces model enabled too")
    if (Task.OCR_DETECT in by_task) != (Task.OCR_RECOGNIZE in by_task):
        raise EngineConfigError("OCR needs both an ocr_detect and an ocr_recognize model")

    config = SessionConfig(
        providers=tuple(settings.providers),
        intra_op_threads=settings.intra_op_threads,
        tensorrt_cache=repository.cache / "tensorrt",
    )
    runners: list[Runner] = []
    for task, runner_class in _SINGLE:
        for manifest in by_task.get(task, []):
            runner = runner_class(manifest, repository, config)
            if isinstance(runner, ClassifyRunner) and Task.EMBED in by_task:
                runner.emit_embedding = False  # the dedicated embedding model wins
            runners.append(runner)
    if Task.OCR_DETECT in by_task:
        det, rec = by_task[Task.OCR_DETECT][0], by_task[Task.OCR_RECOGNIZE][0]
        runners.append(OcrRunner(det, rec, repository, config))
    return runners
