"""One photo's state inside the engine, shared by its decode thread and the enricher."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from streams.engine.results import Failed
from streams.engine.variants import Variant, VariantRun
from streams.errors import DeadlineExceededError, PhotoError
from streams.imaging.budget import Budget
from streams.imaging.thumbnails import Thumbnail
from streams.inference.tasks.base import Work


@dataclass
class Job:
    """One photo's state inside the engine; its decode thread and the enricher share it."""

    photo_id: str
    variants: list[Variant] = field(default_factory=list)  # those that run for its user
    variant_runs: dict[str, VariantRun] = field(default_factory=dict)
    variant_errors: dict[str, str] = field(default_factory=dict)  # failed preparing
    batch_of: dict[str, int] = field(default_factory=dict)  # runner name -> its run's size
    work: Work | None = None
    produced_by: dict[str, dict[str, str]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    phash_variants: list[int] = field(default_factory=list)
    dct_block: list[float] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    saliency: Any = None  # the photo's saliency map (numpy), for crops without faces
    thumbnail_error: str | None = None  # why none were made: the photo's other fields stand
    failure: Failed | None = None
    stage: str = "decode_image"  # where it is, for the dead letter if it fails
    deadline: float = math.inf  # time.monotonic() instant, set when a slot takes it up
    taken_up: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False  # the enricher stopped waiting: whatever the thread makes is late
    _slots: Budget | None = None  # the decode slot held, given back exactly once
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, error: PhotoError, stage: str) -> None:
        self.failure = Failed(self.photo_id, error, stage, self.timings_ms)
        self.work = None  # free the decoded pixels

    def begin(self, slots: Budget, deadline_s: float) -> bool:
        """Hold the slot just taken from ``slots``; False (slot given back) if abandoned."""
        with self._lock:
            if self.abandoned:
                slots.release(1)
                return False
            self._slots = slots
            self.deadline = time.monotonic() + deadline_s
        self.taken_up.set()
        return True

    def give_back_slot(self) -> None:
        with self._lock:
            if self._slots is not None:
                self._slots.release(1)
                self._slots = None

    def abandon(self) -> None:
        """The enricher's side: its slot goes to the next photo while the thread runs on."""
        with self._lock:
            self.abandoned = True
        self.give_back_slot()

    def check_deadline(self) -> None:
        """Between stages (a running stage cannot be interrupted): late work is not finished."""
        if self.abandoned or time.monotonic() > self.deadline:
            raise DeadlineExceededError(
                f"past its deadline during {self.stage} (DARKROOM_ENGINE_PHOTO_DEADLINE_S)"
            )
