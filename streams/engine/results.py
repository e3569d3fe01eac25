"""What the engine returns for each photo: an Enriched (fields of PhotoEnriched) or a Failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.errors import PhotoError
from streams.imaging.thumbnails import Thumbnail

if TYPE_CHECKING:
    from streams.engine.variants import VariantRun


@dataclass
class Enriched:
    """Everything learned about one photo, as PhotoEnriched field values."""

    photo_id: str
    fields: dict[str, Any]  # format, width, height, exif, quality, labels, faces, ...
    produced_by: dict[str, dict[str, str]]  # field -> {"name", "version"}
    timings_ms: dict[str, float] = field(default_factory=dict)
    phash_variants: list[int] = field(default_factory=list)  # 8 rotations/mirrors, [0] = photo
    dct_block: list[float] = field(default_factory=list)  # the 8x8 DCT block behind the hashes
    variants: list[VariantRun] = field(default_factory=list)  # experiments that ran on it
    thumbnails: list[Thumbnail] = field(default_factory=list)  # encoded, not yet stored
    thumbnail_error: str | None = None  # why there are none (the other fields stand)

    @property
    def processing_ms(self) -> float:
        """Time spent on this photo (its share of each batch stage)."""
        return sum(self.timings_ms.values())


@dataclass
class Failed:
    """A photo that could not be enriched, and at which named stage."""

    photo_id: str
    error: PhotoError
    stage: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The FailureReason symbol."""
        return self.error.reason.value

    @property
    def detail(self) -> str:
        """The error message."""
        return str(self.error)
