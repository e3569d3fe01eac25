"""Which task runners an engine runs, in which order, from the settings and the repository.

Nothing here names a task: what each runner runs, requires and defers comes from its class
(``DeclaredRunner``); this module only checks the enabled models against those declarations and
orders the runners so each runs after the ones it requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.config import EngineSettings
from streams.errors import UsageError
from streams.inference.sessions import SessionConfig
from streams.inference.tasks import RUNNERS
from streams.inference.tasks.base import DeclaredRunner, Runner
from streams.models.manifest import ModelManifest, Task
from streams.models.repository import ModelRepository

RunnerClasses = Sequence[type[DeclaredRunner]]


class EngineConfigError(UsageError):
    """The enabled models cannot work together (e.g. two models fill the same field)."""


class DeclarationError(TypeError):
    """Runner classes whose declarations contradict each other: a bug, not a setting."""


def runner_of_task(classes: RunnerClasses = RUNNERS) -> dict[Task, type[DeclaredRunner]]:
    """task -> the one runner class that runs it."""
    owners: dict[Task, type[DeclaredRunner]] = {}
    for cls in classes:
        if not cls.tasks:
            raise DeclarationError(f"{cls.__name__} declares no tasks")
        for task in cls.tasks:
            if task in owners:
                raise DeclarationError(
                    f"{owners[task].__name__} and {cls.__name__} both declare task {task}"
                )
            owners[task] = cls
    return owners


def execution_order(classes: RunnerClasses = RUNNERS) -> list[type[DeclaredRunner]]:
    """The classes with each after the runners of its ``requires``, else in the given order."""
    owners = runner_of_task(classes)
    after: dict[type[DeclaredRunner], set[type[DeclaredRunner]]] = {}
    for cls in classes:
        unknown = [task for task in cls.requires if task not in owners]
        if unknown:
            raise DeclarationError(
                f"{cls.__name__} requires {', '.join(unknown)}, which no runner runs"
            )
        after[cls] = {owners[task] for task in cls.requires} - {cls}
    order: list[type[DeclaredRunner]] = []
    pending = list(classes)
    while pending:
        # The first class whose requirements are placed: keeps the list order wherever it can.
        ready = next((c for c in pending if after[c] <= set(order)), None)
        if ready is None:
            names = ", ".join(c.__name__ for c in pending)
            raise DeclarationError(f"runners require each other in a cycle: {names}")
        order.append(ready)
        pending.remove(ready)
    return order


def companions(classes: RunnerClasses = RUNNERS) -> dict[Task, tuple[Task, ...]]:
    """task -> the other tasks a model of it cannot run without (only tasks that have some).

    The tasks its runner runs together with it, plus what that runner requires, transitively:
    what `darkroom models verify` enables beside the model it checks.
    """
    owners = runner_of_task(classes)
    table: dict[Task, tuple[Task, ...]] = {}
    for task in owners:
        needed: list[Task] = []
        stack = [task]
        while stack:
            cls = owners[stack.pop()]
            for other in (*cls.tasks, *cls.requires):
                if other != task and other not in needed:
                    needed.append(other)
                    stack.append(other)
        if needed:
            table[task] = tuple(needed)
    return table


def enabled_manifests(settings: EngineSettings, repository: ModelRepository) -> list[ModelManifest]:
    """The manifests named by ``settings.models`` ('all' = every production model)."""
    if settings.models.strip().lower() == "all":
        return repository.production()
    names = [n.strip() for n in settings.models.split(",") if n.strip()]
    chosen = [repository.get(name) for name in names]
    for manifest in chosen:
        if manifest.is_variant:
            raise EngineConfigError(
                f"{manifest.name} is a variant of {manifest.variant_of}: it runs by its "
                "[rollout] (DARKROOM_ENGINE_VARIANTS), not in DARKROOM_ENGINE_MODELS"
            )
    return chosen


def check_enabled(
    manifests: Sequence[ModelManifest], classes: RunnerClasses = RUNNERS
) -> dict[Task, ModelManifest]:
    """task -> its one enabled model, or EngineConfigError saying what is missing or doubled."""
    owners = runner_of_task(classes)
    by_task: dict[Task, list[ModelManifest]] = {}
    for manifest in manifests:
        by_task.setdefault(manifest.task, []).append(manifest)
    for task, group in by_task.items():
        if len(group) > 1:
            raise EngineConfigError(
                f"{len(group)} enabled models do {task}: {', '.join(m.name for m in group)}; "
                "name the ones to run in DARKROOM_ENGINE_MODELS"
            )
        if task not in owners:
            raise EngineConfigError(f"{group[0].name}: no runner runs task {task}")
    for cls in classes:
        present = [task for task in cls.tasks if task in by_task]
        if not present:
            continue
        together = [task for task in cls.tasks if task not in by_task]
        if together:
            raise EngineConfigError(
                f"{present[0]} needs {_a(together)} model enabled too "
                f"({' + '.join(cls.tasks)} run together as one step)"
            )
        missing = [task for task in cls.requires if task not in by_task]
        if missing:
            raise EngineConfigError(f"{present[0]} needs {_a(missing)} model enabled too")
    return {task: group[0] for task, group in by_task.items()}


def _a(tasks: Sequence[Task]) -> str:
    """'a detect_faces' / 'an ocr_recognize and a ...': the tasks as a phrase."""
    return " and ".join(f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in tasks)


def open_runners(
    enabled: Mapping[Task, ModelManifest],
    repository: ModelRepository,
    config: SessionConfig,
    classes: RunnerClasses = RUNNERS,
) -> list[DeclaredRunner]:
    """A runner per class with enabled models, in execution order (``enabled`` is checked)."""
    runners: list[DeclaredRunner] = []
    for cls in execution_order(classes):
        if cls.tasks[0] not in enabled:
            continue
        runner = cls.open([enabled[task] for task in cls.tasks], repository, config)
        runner.deferred = frozenset(f for f, task in cls.defers.items() if task in enabled)
        runners.append(runner)
    return runners


def session_config(settings: EngineSettings, repository: ModelRepository) -> SessionConfig:
    """How every session of this engine is opened."""
    return SessionConfig(
        providers=tuple(settings.providers),
        intra_op_threads=settings.intra_op_threads,
        spin_threads=settings.spin_threads,
        tensorrt_cache=repository.cache / "tensorrt",
    )


def load_runners(settings: EngineSettings, repository: ModelRepository) -> list[Runner]:
    """Open a session for every enabled model and return the runners in execution order."""
    enabled = check_enabled(enabled_manifests(settings, repository))
    runners: list[Runner] = [
        *open_runners(enabled, repository, session_config(settings, repository))
    ]
    return runners
