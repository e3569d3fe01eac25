"""Runner classes that only declare: what the registry sees, without models or sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self

from streams.inference.sessions import SessionConfig
from streams.inference.tasks.base import DeclaredRunner, Fields, Work
from streams.models.manifest import ModelManifest, Task
from streams.models.repository import ModelRepository


class FakeRunner(DeclaredRunner):
    """Records the manifests it was opened with; runs nothing."""

    def __init__(self, manifests: Sequence[ModelManifest]) -> None:
        self.manifests = list(manifests)
        self.name = "+".join(m.name for m in manifests)

    @classmethod
    def open(
        cls, manifests: Sequence[ModelManifest], repository: ModelRepository, config: SessionConfig
    ) -> Self:
        return cls(manifests)

    def needed_side(self) -> int:
        return 0

    def prepare(self, photo: Any) -> None:
        return None

    def warm_up(self) -> float:
        return 0.0

    def run(self, works: Sequence[Work]) -> list[Fields]:
        return [{} for _ in works]


def fake(
    name: str,
    tasks: tuple[Task, ...],
    requires: tuple[Task, ...] = (),
    defers: Mapping[str, Task] | None = None,
) -> type[FakeRunner]:
    """A FakeRunner subclass called ``name`` with these declarations."""
    declared_tasks, declared_requires = tasks, requires
    declared_defers = MappingProxyType(dict(defers or {}))

    class Declared(FakeRunner):
        tasks = declared_tasks
        requires = declared_requires
        defers = declared_defers

    Declared.__name__ = Declared.__qualname__ = name
    return Declared


def manifest(name: str, task: Task) -> ModelManifest:
    """The smallest valid manifest of ``task``."""
    return ModelManifest.model_validate(
        {"name": name, "version": "1", "task": task, "license": "test", "source": {"file": "x"}}
    )
