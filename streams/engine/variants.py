"""Variants: a model folder with ``variant_of`` and ``[rollout]`` runs beside its production model.

A variant's runner is its production runner's class opened with the variant in the production
model's place (an OCR detector variant still reads with the production recogniser). Which users
it runs for is ``streams.models.rollout.in_rollout``: the same on every worker and every replay.

- shadow: production serves the user; the variant runs too and is only measured.
- canary: the variant serves the user (its fields, its name in ``produced_by``); production runs
  too, so a photo the variant fails on is still served by production, and so that the canary
  is measured against production exactly as a shadow is.
- retired: a former production model kept for rollback; it runs for nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.config import EngineSettings
from streams.engine.runners import EngineConfigError, runner_of_task
from streams.inference.agreement import Figures
from streams.inference.sessions import SessionConfig
from streams.inference.tasks.base import DeclaredRunner, Fields
from streams.logs import get_logger
from streams.models.manifest import ModelManifest, RolloutMode, Task
from streams.models.repository import ModelRepository
from streams.models.rollout import in_rollout

log = get_logger("darkroom.engine")

# Every variant has this figure: its per-photo inference time over production's on the same
# photos. The report computes it from the two times each shadow record carries.
LATENCY_RATIO = "latency_ratio"
ERROR_RATE = "error_rate"  # and the share of its photos it produced nothing on


@dataclass(frozen=True)
class Variant:
    """A variant's manifest and runner, and the production model and runner it is measured
    against."""

    manifest: ModelManifest
    runner: DeclaredRunner
    production: DeclaredRunner
    base: ModelManifest  # the production model it varies (the runner may run more than it)

    def refs(self) -> tuple[dict[str, str], dict[str, str]]:
        """(production, variant) as name and version: the models, not their runners (an OCR
        detector variant is ppocr_det_int8, not ppocr_det_int8+ppocr_rec)."""
        return (
            {"name": self.base.name, "version": self.base.version},
            {"name": self.manifest.name, "version": self.manifest.version},
        )

    @property
    def name(self) -> str:
        """The variant's model name (its folder)."""
        return self.manifest.name

    @property
    def mode(self) -> RolloutMode:
        """shadow or canary (retired variants are never loaded)."""
        assert self.manifest.rollout is not None
        return self.manifest.rollout.mode

    def applies_to(self, user_id: str) -> bool:
        """Whether this variant runs for ``user_id`` (a stable hash; see models/rollout.py)."""
        return in_rollout(self.manifest, user_id)

    def compare(self, production: Fields, variant: Fields) -> Figures:
        """The task's agreement figures for one photo."""
        return type(self.runner).compare(production, variant)


@dataclass
class VariantRun:
    """What one variant did on one photo, beside what production did."""

    variant: str
    mode: RolloutMode
    task: Task
    production: dict[str, str]  # name, version of the production model it varies
    model: dict[str, str]  # name, version of the variant
    provenance: dict[str, str]  # what produced_by names for its fields (its runner)
    production_ms: float  # production's per-photo share of its batch
    production_batch: int
    variant_ms: float = 0.0
    variant_batch: int = 0
    fields: Fields | None = None  # None: it failed on this photo (``error`` says why)
    produced_by: dict[str, dict[str, str]] = field(default_factory=dict)
    figures: Figures = field(default_factory=dict)
    error: str | None = None


def figures_of(manifest: ModelManifest, classes: Sequence[type[DeclaredRunner]]) -> list[str]:
    """The figures a variant of ``manifest``'s task reports (what promote_when may name)."""
    owners = runner_of_task(classes)
    return [LATENCY_RATIO, ERROR_RATE, *owners[manifest.task].figures]


def check_criteria(manifest: ModelManifest, classes: Sequence[type[DeclaredRunner]]) -> None:
    """EngineConfigError when ``[rollout.promote_when]`` names a figure the task lacks."""
    assert manifest.rollout is not None
    known = figures_of(manifest, classes)
    unknown = [name for name in manifest.rollout.promote_when if name not in known]
    if unknown:
        raise EngineConfigError(
            f"{manifest.name}: promote_when names {', '.join(unknown)}, which a {manifest.task} "
            f"variant does not report (it reports {', '.join(known)})"
        )


def wanted(settings: EngineSettings, repository: ModelRepository) -> list[ModelManifest]:
    """The variants ``DARKROOM_ENGINE_VARIANTS`` asks for ('all', 'none' or names), not retired."""
    choice = settings.variants.strip().lower()
    if choice == "none":
        return []
    if choice == "all":
        chosen = repository.variants()
    else:
        chosen = [repository.get(n.strip()) for n in settings.variants.split(",") if n.strip()]
        for manifest in chosen:
            if not manifest.is_variant:
                raise EngineConfigError(
                    f"{manifest.name} is a production model, not a variant "
                    "(DARKROOM_ENGINE_VARIANTS names variants)"
                )
    return [m for m in chosen if m.rollout is not None and m.rollout.mode != "retired"]


def open_variants(
    chosen: Sequence[ModelManifest],
    enabled: Mapping[Task, ModelManifest],
    production: Sequence[DeclaredRunner],
    repository: ModelRepository,
    config: SessionConfig,
    classes: Sequence[type[DeclaredRunner]],
) -> list[Variant]:
    """A runner per chosen variant whose production model is enabled, opened like production's."""
    owners = runner_of_task(classes)
    runner_of_class = {type(runner): runner for runner in production}
    variants: list[Variant] = []
    for manifest in chosen:
        check_criteria(manifest, classes)
        base = enabled.get(manifest.task)
        if base is None or base.name != manifest.variant_of:
            log.warning(
                "variant not run: its production model is not enabled",
                variant=manifest.name,
                variant_of=manifest.variant_of,
            )
            continue
        cls = owners[manifest.task]
        models = [manifest if task is manifest.task else enabled[task] for task in cls.tasks]
        runner = cls.open(models, repository, config)
        twin = runner_of_class[cls]
        runner.deferred = twin.deferred  # the same fields as production, to compare like for like
        runner.max_run_pixels = twin.max_run_pixels
        variants.append(Variant(manifest, runner, twin, base))
    return variants


def serve_canary(fields: dict[str, Any], produced_by: dict[str, Any], run: VariantRun) -> None:
    """Put a canary's fields (and its name) where production's were, for a photo it succeeded on."""
    assert run.fields is not None
    fields.update(run.fields)
    produced_by.update(run.produced_by)


@dataclass
class VariantWatch:
    """Switches off a variant that fails on more than ``max_failure_share`` of its photos,
    once it has run on ``min_photos``: an experiment that keeps failing only costs CPU, and
    says so (an error in the log, ``switched_off`` shown by /healthz and the metrics)."""

    max_failure_share: float
    min_photos: int
    counts: dict[str, list[int]] = field(default_factory=dict)  # name -> [photos, failures]
    switched_off: dict[str, str] = field(default_factory=dict)  # name -> why

    def prune(self, variants: list[Variant], runs: Iterable[VariantRun]) -> list[Variant]:
        """Count ``runs``; the variants still on."""
        for run in runs:
            count = self.counts.setdefault(run.variant, [0, 0])
            count[0] += 1
            count[1] += run.error is not None
        kept = []
        for variant in variants:
            photos, failures = self.counts.get(variant.name, (0, 0))
            if photos >= self.min_photos and failures > self.max_failure_share * photos:
                why = f"failed on {failures} of {photos} photos"
                self.switched_off[variant.name] = why
                log.error("variant switched off; production serves", variant=variant.name, why=why)
            else:
                kept.append(variant)
        return kept
