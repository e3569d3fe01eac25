"""What every task runner shares: a manifest, a session, and the batch contract.

The engine calls ``prepare`` for each photo in its decode threads (OpenCV geometry releases the
GIL), then ``run`` once per batch on the prepared inputs; ``run`` returns the event fields it
fills for each photo, in order. A runner never sees Kafka or the event schema's other fields.

Each runner class declares which tasks it runs and which it requires (``DeclaredRunner``); the
engine's registry (streams/engine/runners.py) and the verifier read only those declarations, so a
new task is one new class listed in ``streams.inference.tasks.RUNNERS`` and no registry edits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from streams.imaging.decode import DecodedPhoto
from streams.inference.agreement import Figures
from streams.inference.preprocess import Image, Placement, TensorMaker, fit
from streams.inference.sessions import ModelSession, SessionConfig
from streams.models.manifest import InputSpec, ManifestError, ModelManifest, Task
from streams.models.repository import ModelRepository

Fields = dict[str, Any]
Array = np.ndarray[Any, Any]


@dataclass
class Prepared:
    """One photo's input for one runner."""

    fitted: Image
    placement: Placement


@dataclass
class Work:
    """One photo on its way through the runners of a batch."""

    photo: DecodedPhoto
    prepared: dict[str, Any] = field(default_factory=dict)  # runner name -> prepared input
    fields: Fields = field(default_factory=dict)  # event fields filled so far


class Runner(Protocol):
    """What the engine needs of a runner (TaskRunner below, or the two-model OcrRunner)."""

    name: str
    fields: tuple[str, ...]
    manifests: list[ModelManifest]
    provenance: dict[str, str]  # what produced_by records for the fields it fills
    provenance_key: str | None  # one produced_by key instead of the field names (or None)
    session: ModelSession

    def needed_side(self) -> int:
        """The decoded long side below which the model would lose detail."""
        ...

    max_run_pixels: int  # batch x input pixels of one session run (activation memory)

    def photos_per_run(self, max_batch: int) -> int:
        """How many photos the engine hands one ``run``."""
        ...

    def prepare(self, photo: DecodedPhoto) -> Any:
        """Per-photo input preparation, in a decode thread."""
        ...

    def warm_up(self) -> float:
        """One run on blank input; returns seconds."""
        ...

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """The event fields for each photo of the batch."""
        ...


class DeclaredRunner(ABC):
    """A runner that declares what it runs, so the registry needs no per-task special cases.

    ``tasks``: the manifests' tasks it runs, one model of each, handed to ``open`` in this order
    (several: the models work as one step, e.g. OCR detection + recognition; enabling one of
    them without the others is a configuration error). ``requires``: tasks whose runners must
    be enabled too and run first (face embeddings need the detector's faces). ``defers``: a field
    this runner leaves to another task's runner when that task is enabled (a dedicated embedding
    model beats a classifier's side output).
    """

    tasks: ClassVar[tuple[Task, ...]] = ()
    requires: ClassVar[tuple[Task, ...]] = ()
    defers: ClassVar[Mapping[str, Task]] = MappingProxyType({})
    # What ``compare`` reports for a variant against production (streams/inference/agreement.py);
    # a manifest's [rollout.promote_when] may name these and ``latency_ratio``.
    figures: ClassVar[tuple[str, ...]] = ()

    fields: tuple[str, ...] = ()  # event fields this runner fills
    provenance_key: str | None = None
    name: str
    manifests: list[ModelManifest]
    provenance: dict[str, str]
    session: ModelSession
    deferred: frozenset[str] = frozenset()  # fields of ``defers`` whose task is enabled
    max_run_pixels: int = 16 * 256 * 256  # the engine sets DARKROOM_ENGINE_MAX_INFERENCE_PIXELS

    @classmethod
    @abstractmethod
    def open(
        cls, manifests: Sequence[ModelManifest], repository: ModelRepository, config: SessionConfig
    ) -> Self:
        """A runner for one manifest of each of ``tasks``, in that order."""

    @abstractmethod
    def needed_side(self) -> int:
        """The decoded long side below which the model would lose detail."""

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """``figures`` for one photo: a variant's fields against production's."""
        return {}

    @classmethod
    def calibration_inputs(cls, manifest: ModelManifest, photos: Sequence[Image]) -> list[Array]:
        """The model's input tensor for each photo, as ``run`` would make it (INT8 builds
        calibrate on these); a runner that cannot make them says so."""
        raise ManifestError(f"{manifest.key}: {cls.__name__} cannot calibrate a [quantize]")

    def photos_per_run(self, max_batch: int) -> int:
        """As many photos as fit ``max_run_pixels`` at the model's input size (at least one):
        16 OCR detector inputs of 960x960 needed 2.15 GB in one run, which onnxruntime's arena
        then kept."""
        return max(1, min(max_batch, self.max_run_pixels // self.needed_side() ** 2))

    @abstractmethod
    def prepare(self, photo: DecodedPhoto) -> Any:
        """Per-photo input preparation, in a decode thread."""

    @abstractmethod
    def warm_up(self) -> float:
        """One run on blank input; returns seconds."""

    @abstractmethod
    def run(self, works: Sequence[Work]) -> list[Fields]:
        """The event fields for each photo of the batch."""


class TaskRunner(DeclaredRunner):
    """Base for runners of single-model tasks with a standard image input."""

    def __init__(
        self, manifest: ModelManifest, repository: ModelRepository, config: SessionConfig
    ) -> None:
        self.manifest = manifest
        self.manifests = [manifest]
        self.name = manifest.name
        self.provenance = {"name": manifest.name, "version": manifest.version}
        self.artifacts = repository.require_built(manifest)
        self.labels = self.artifacts.read_labels() if manifest.labels is not None else []
        self.session = ModelSession(self.artifacts.model, config, manifest.key)
        self.spec = self._input_spec()
        self.to_tensor = TensorMaker(self.spec)

    @classmethod
    def open(
        cls, manifests: Sequence[ModelManifest], repository: ModelRepository, config: SessionConfig
    ) -> Self:
        """The runner of the one manifest a single-model task gets."""
        (manifest,) = manifests
        return cls(manifest, repository, config)

    def _input_spec(self) -> InputSpec:
        if self.manifest.input is None:
            raise ManifestError(f"{self.manifest.key}: task {self.manifest.task} needs [input]")
        return self.manifest.input

    def output(self, role: str) -> str:
        """The graph output name the manifest maps ``role`` to."""
        try:
            return self.manifest.outputs[role]
        except KeyError:
            raise ManifestError(f"{self.manifest.key}: [outputs] needs {role!r}") from None

    @classmethod
    def calibration_inputs(cls, manifest: ModelManifest, photos: Sequence[Image]) -> list[Array]:
        """Each photo fitted and normalised as ``prepare`` and ``infer`` do, one per tensor."""
        if manifest.input is None:
            raise ManifestError(f"{manifest.key}: task {manifest.task} needs [input]")
        spec = manifest.input
        to_tensor = TensorMaker(spec)
        return [to_tensor([fit(photo, spec)[0]]) for photo in photos]

    def prepare(self, photo: DecodedPhoto) -> Prepared:
        """Fit the photo to the model's input (runs in a decode thread)."""
        fitted, placement = fit(photo.image, self.spec, photo.scale)
        return Prepared(fitted, placement)

    def needed_side(self) -> int:
        """The decoded long side below which this model would lose detail."""
        return max(self.spec.resize_to or 0, *self.spec.size)

    def infer(self, prepared: Sequence[Prepared], outputs: Sequence[str]) -> list[np.ndarray]:
        """One session run over the batch."""
        tensor = self.to_tensor([p.fitted for p in prepared])
        return self.session.run({self.spec.name: tensor}, outputs)

    def warm_up(self) -> float:
        """Run a one-photo batch of zeros; returns seconds."""
        blank = np.zeros((*self.spec.size, 3), dtype=np.uint8)
        return self.session.warm_up({self.spec.name: self.to_tensor([blank])})

    @abstractmethod
    def run(self, works: Sequence[Work]) -> list[Fields]:
        """The event fields for each photo of the batch."""
