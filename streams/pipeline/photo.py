"""A message's way through a batch (``Photo``) and a processed batch (``Batch``), as the
pipeline (streams/pipeline/batch.py) fills them and its callers read them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.engine import Enriched, Failed, Submitted
from streams.errors import PhotoError
from streams.pipeline.bestshot import ShotFindings
from streams.pipeline.dedup import Findings
from streams.pipeline.faces import Given
from streams.pipeline.outputs import Attempt, RawMessage
from streams.pipeline.people import PeopleFindings

OutputTopic = Literal["enriched", "failed"]


@dataclass
class Photo:
    """One message's way through a batch."""

    message: RawMessage
    upload: dict[str, Any] | None = None  # the decoded PhotoUploaded
    request: dict[str, Any] | None = None  # or the decoded PhotoDeleted / UserErased
    skipped: bool = False  # already done with these models: no output
    attempt: Attempt = field(default_factory=Attempt)  # names its outcome (set when built)
    fetched_bytes: int | None = None  # how many bytes the blob really had
    result: Enriched | Failed | None = None
    record: dict[str, Any] | None = None  # the output record, once built
    value: bytes | None = None  # the output, encoded
    shadows: list[bytes] = field(default_factory=list)  # encoded ShadowResults (photos.shadow)
    people: Given | None = None  # the clusters its faces joined (when people are kept)
    best_shot: dict[str, Any] | None = None  # its BestShot record (when groups are ranked)
    person_ids: list[str | None] | None = None  # per face, where its cluster is a person
    assets: dict[str, Any] | None = None  # its PhotoEnriched ``assets`` (thumbnails stored)

    @property
    def failed(self) -> Failed | None:
        """This photo's failure, if it failed anywhere."""
        return self.result if isinstance(self.result, Failed) else None

    @property
    def enriched(self) -> Enriched | None:
        """This photo's enrichment, if it succeeded."""
        return self.result if isinstance(self.result, Enriched) else None

    @property
    def topic(self) -> OutputTopic | None:
        """Where its output goes (None: skipped)."""
        if self.value is None:
            return None
        return "failed" if self.failed is not None else "enriched"

    def fail(self, error: PhotoError, stage: str) -> None:
        """The first failure wins; later steps leave a failed photo alone."""
        timings = self.result.timings_ms if self.result is not None else {}
        self.result = Failed(self._photo_id, error, stage, timings)

    @property
    def _photo_id(self) -> str:
        return str(self.upload["photo_id"]) if self.upload else ""


@dataclass
class Batch:
    """A processed batch: every photo with its output, and what the duplicate search, the
    best-shot ranking and the people clustering found."""

    photos: list[Photo]
    findings: Findings = field(default_factory=Findings)
    shots: ShotFindings = field(default_factory=ShotFindings)
    people: PeopleFindings = field(default_factory=PeopleFindings)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def outputs(self) -> list[Photo]:
        """The photos that have an output to send, in order."""
        return [photo for photo in self.photos if photo.value is not None]

    def shadows(self) -> list[tuple[Photo, bytes]]:
        """Every ShadowResult to send (photos.shadow), with the photo it measures."""
        return [(photo, value) for photo in self.photos for value in photo.shadows]


@dataclass
class Started:
    """A batch between ``Pipeline.start`` and ``Pipeline.finish``: its events decoded, and the
    photos the engine is decoding, each with its engine job."""

    batch: Batch
    engine: list[tuple[Photo, Submitted]]


SkipRule = Callable[[Photo], bool]
# a decoded upload -> why it is refused (its photo or its user was forgotten), or None
RefusalRule = Callable[[Photo], PhotoError | None]
# a decoded upload -> which attempt at its photo it is (1 for the first; see outputs.Attempt)
AttemptRule = Callable[[Photo], int]


def never_skip(_photo: Photo) -> bool:
    """The default skip rule: every upload is processed."""
    return False


def never_refuse(_photo: Photo) -> PhotoError | None:
    """The default refusal rule, where nothing is remembered: no upload is refused."""
    return None


def first_attempt(_photo: Photo) -> int:
    """The default attempt rule, where nothing is remembered: every upload is attempt 1."""
    return 1
