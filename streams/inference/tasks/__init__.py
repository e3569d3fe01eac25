"""Task runners: one class per task, configured entirely by a model's manifest.

``RUNNERS`` is the one list the engine reads: a runner for a new task is a new class declaring
``tasks`` / ``requires`` (see ``base.DeclaredRunner``) plus its line here. Its order breaks ties
in the execution order, which otherwise follows ``requires``.
"""

from streams.inference.tasks.base import DeclaredRunner
from streams.inference.tasks.classify import ClassifyRunner, EmbedRunner
from streams.inference.tasks.face_embed import FaceEmbedRunner
from streams.inference.tasks.faces import FaceDetectRunner
from streams.inference.tasks.moderate import ModerateRunner
from streams.inference.tasks.ocr import OcrRunner

RUNNERS: tuple[type[DeclaredRunner], ...] = (
    ClassifyRunner,
    EmbedRunner,
    FaceDetectRunner,
    FaceEmbedRunner,
    ModerateRunner,
    OcrRunner,
)

__all__ = ["RUNNERS", "DeclaredRunner"]
