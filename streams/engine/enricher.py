"""Enricher: decode photos in a thread pool, run every enabled model in batches, isolate failures.

    enricher = Enricher(settings.engine, repository)
    results = enricher.enrich([PhotoInput("p1", jpeg_bytes), ...])  # -> Enriched | Failed each

``enrich_batches`` overlaps the next batch's decoding (threads; OpenCV releases the GIL) with the
current batch's inference. One photo's failure, at any stage, never costs the others in its batch:
a batch that fails inference is re-run photo by photo to find the one to blame.

Nor does one photo hold its batch up: each has ``photo_deadline_s`` (10 s) from when a decode
slot takes it up, and one deadline to be taken up at all. A photo past it is a DEADLINE_EXCEEDED
dead letter and the batch goes on without it (a 20,000-scan JPEG decoded for 60 s while the
others waited). Memory is bounded too: the decode threads share a ``Budget`` of
``max_decoded_pixels_in_flight`` full-size pixels, every photo is shrunk to what the runners need
(``_needed_side``) right after decoding, and inference runs at most ``max_inference_pixels`` of
model input at once. 16 flat 10000x10000 PNGs peaked 7.7 GB above idle and kept 2.5 GB; now
0.7 GB and 0.45 GB (``python -m benchmarks.memory``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from streams.config import EngineSettings, Settings
from streams.engine.results import Enriched, Failed
from streams.engine.runners import load_runners
from streams.errors import DeadlineExceededError, InferenceError, PhotoError
from streams.imaging.budget import Budget
from streams.imaging.decode import DecodedPhoto, Decoder
from streams.imaging.features import extract_features
from streams.imaging.sniff import ImageFormat
from streams.inference.tasks.base import Fields, Runner, Work
from streams.logs import get_logger
from streams.models.repository import ModelRepository

log = get_logger("darkroom.engine")


@dataclass(frozen=True)
class PhotoInput:
    """A photo's id and its bytes (already fetched)."""

    photo_id: str
    data: bytes


@dataclass
class _Job:
    """One photo's state inside the engine; its decode thread and the enricher share it."""

    photo_id: str
    work: Work | None = None
    produced_by: dict[str, dict[str, str]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    phash_variants: list[int] = field(default_factory=list)
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


class Enricher:
    """Photo bytes in, PhotoEnriched fields out, for every enabled model."""

    def __init__(self, settings: EngineSettings, repository: ModelRepository) -> None:
        self.settings = settings
        self.runners = load_runners(settings, repository)
        for runner in self.runners:
            runner.max_run_pixels = settings.max_inference_pixels
        self.decoder = Decoder(
            max_pixels=settings.max_pixels,
            min_side=self._needed_side(),
            max_aspect_ratio=settings.max_aspect_ratio,
            max_jpeg_scans=settings.max_jpeg_scans,
            budget=Budget(settings.max_decoded_pixels_in_flight),
        )
        # decode_threads slots do the work; a photo past its deadline gives its slot back but
        # keeps its thread (cv2.imdecode cannot be interrupted) until the decode ends, so as
        # many spare threads again let the next photos start meanwhile. Each late decode still
        # costs a core and its pixels until it ends; beyond the spares, photos wait for a
        # thread and fail their deadline rather than stall the batch.
        self._slots = Budget(settings.decode_threads)
        self._pool = ThreadPoolExecutor(2 * settings.decode_threads, thread_name_prefix="decode")
        warm = {runner.name: round(runner.warm_up(), 3) for runner in self.runners}
        warm["features"] = round(self._warm_up_features(), 3)
        log.info(
            "engine ready",
            warm_up_s=warm,
            decode_side=self.decoder.min_side,
            providers={r.name: r.session.provider for r in self.runners},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Enricher:
        """The engine ``settings`` configure, every enabled model loaded (seconds)."""
        return cls(settings.engine, ModelRepository.from_settings(settings))

    def _warm_up_features(self) -> float:
        """OpenCV builds its Lab table on first use (~100 ms): before the first photo, not in it."""
        started = time.perf_counter()
        blank = np.full((64, 64, 3), 128, dtype=np.uint8)
        photo = DecodedPhoto(blank, ImageFormat.PNG, 64, 64, 1)
        extract_features(photo, self.settings.blur_threshold)
        return time.perf_counter() - started

    def _needed_side(self) -> int:
        """The smallest decoded long side that loses nothing any runner (or feature) needs."""
        return max([512, *(runner.needed_side() for runner in self.runners)])

    @property
    def model_versions(self) -> dict[str, str]:
        """name -> version of every model that runs (what idempotency compares)."""
        return {m.name: m.version for r in self.runners for m in r.manifests}

    def close(self) -> None:
        """Stop the decode threads (waits for a late decode to end)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def enrich(self, items: Sequence[PhotoInput]) -> list[Enriched | Failed]:
        """Enrich one batch; results are in input order, one per item."""
        return self._infer(self._collect(self._submit(items)))

    def enrich_batches(
        self, batches: Iterable[Sequence[PhotoInput]]
    ) -> Iterator[list[Enriched | Failed]]:
        """Enrich batch after batch, decoding batch n+1 while batch n is in inference."""
        pending: list[tuple[_Job, Future[_Job]]] | None = None
        for batch in batches:
            submitted = self._submit(batch)
            if pending is not None:
                yield self._infer(self._collect(pending))
            pending = submitted
        if pending is not None:
            yield self._infer(self._collect(pending))

    def _submit(self, items: Sequence[PhotoInput]) -> list[tuple[_Job, Future[_Job]]]:
        jobs = [_Job(item.photo_id) for item in items]
        return [
            (job, self._pool.submit(self._prepare, job, item))
            for job, item in zip(jobs, items, strict=True)
        ]

    def _collect(self, pending: list[tuple[_Job, Future[_Job]]]) -> list[_Job]:
        """Each photo's prepared job, or a DEADLINE_EXCEEDED one for a photo not done in time."""
        limit = self.settings.photo_deadline_s
        jobs: list[_Job] = []
        for job, future in pending:
            # the photos before this one are done: only late decodes can keep it from a
            # thread for a whole deadline
            if job.taken_up.wait(limit):
                try:
                    jobs.append(future.result(max(0.0, job.deadline - time.monotonic())))
                    continue
                except FutureTimeout:
                    pass
            future.cancel()  # still queued: it will never start
            job.abandon()
            waited = "decoding and preparing" if job.deadline < math.inf else "waiting for a thread"
            error = DeadlineExceededError(
                f"still {waited} after {limit:g} s (DARKROOM_ENGINE_PHOTO_DEADLINE_S)"
            )
            late = _Job(job.photo_id, stage=job.stage, timings_ms=dict(job.timings_ms))
            late.fail(error, job.stage)
            log.warning("photo past its deadline", photo_id=job.photo_id, stage=job.stage)
            jobs.append(late)
        return jobs

    def _prepare(self, job: _Job, item: PhotoInput) -> _Job:
        """Decode, features and fitting (a decode thread). Whatever goes wrong stays with this
        photo: a typed PhotoError keeps its reason, anything unexpected is INTERNAL_ERROR."""
        # no deadline on this wait: a slot is held only by a live photo, which gives it back
        # when done or when the enricher gives up on it (its deadline, once its batch is
        # being collected), whichever comes first
        self._slots.acquire(1)
        if not job.begin(self._slots, self.settings.photo_deadline_s):
            return job  # abandoned while queued
        try:
            self._prepare_into(job, item)
        except PhotoError as error:
            job.fail(error, job.stage)
        except Exception as error:
            log.exception("photo failed unexpectedly", photo_id=item.photo_id, stage=job.stage)
            job.fail(PhotoError(f"unexpected {type(error).__name__}: {error}"), job.stage)
        finally:
            job.give_back_slot()
            if job.abandoned:
                job.work = None  # late: the batch went on without it, drop its pixels now
        return job

    def _prepare_into(self, job: _Job, item: PhotoInput) -> None:
        started = time.perf_counter()
        try:
            photo = self.decoder.decode(item.data, deadline=job.deadline)
        finally:
            job.timings_ms["decode"] = _ms_since(started)
        job.check_deadline()
        job.stage = "features"
        started = time.perf_counter()
        features, produced_by, job.phash_variants = extract_features(
            photo, self.settings.blur_threshold
        )
        job.timings_ms["features"] = _ms_since(started)
        job.check_deadline()
        job.produced_by.update(produced_by)
        job.stage = "preprocess"
        started = time.perf_counter()
        work = Work(
            photo,
            fields={
                "format": photo.format.value,
                "width": photo.width,
                "height": photo.height,
                **features,
            },
        )
        for runner in self.runners:
            work.prepared[runner.name] = runner.prepare(photo)
        job.timings_ms["preprocess"] = _ms_since(started)
        job.check_deadline()
        job.work = work

    def _infer(self, jobs: list[_Job]) -> list[Enriched | Failed]:
        for runner in self.runners:
            alive = [job for job in jobs if job.work is not None]
            size = runner.photos_per_run(self.settings.max_batch)
            for start in range(0, len(alive), size):
                self._run(runner, alive[start : start + size])
        return [self._result(job) for job in jobs]

    def _run(self, runner: Runner, chunk: list[_Job]) -> None:
        """One runner over one chunk; on failure, photo by photo to isolate the culprit."""
        stage = f"infer:{runner.name}"
        started = time.perf_counter()
        try:
            outputs: list[Fields | BaseException] = list(
                runner.run([j.work for j in chunk if j.work is not None])
            )
        except Exception as batch_error:
            log.warning(
                "batch failed, isolating", stage=stage, size=len(chunk), error=repr(batch_error)
            )
            outputs = [self._run_one(runner, job) for job in chunk]
        share = _ms_since(started) / len(chunk)
        for job, output in zip(chunk, outputs, strict=True):
            job.timings_ms[stage] = share
            if isinstance(output, BaseException):
                job.fail(InferenceError(f"{runner.name}: {output!r}"), stage)
                continue
            assert job.work is not None
            job.work.fields.update(output)
            keys = [name for name, value in output.items() if value is not None]
            if keys and runner.provenance_key:
                keys = [runner.provenance_key]  # e.g. faces.embedding: the detector made faces
            job.produced_by.update(dict.fromkeys(keys, runner.provenance))

    @staticmethod
    def _run_one(runner: Runner, job: _Job) -> Fields | BaseException:
        assert job.work is not None
        try:
            (output,) = runner.run([job.work])
        except Exception as error:
            return error
        result: Fields = output
        return result

    @staticmethod
    def _result(job: _Job) -> Enriched | Failed:
        if job.failure is not None:
            return job.failure
        assert job.work is not None
        return Enriched(
            job.photo_id, job.work.fields, job.produced_by, job.timings_ms, job.phash_variants
        )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
