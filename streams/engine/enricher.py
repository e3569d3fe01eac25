"""Enricher: decode photos in a thread pool, run every enabled model in batches, isolate failures.

    enricher = Enricher(settings.engine, repository)
    results = enricher.enrich([PhotoInput("p1", jpeg_bytes), ...])  # -> Enriched | Failed each

``enrich_batches`` overlaps the next batch's decoding (threads; OpenCV releases the GIL) with the
current batch's inference. One photo's failure, at any stage, never costs the others in its batch:
a batch that fails inference is re-run photo by photo to find the one to blame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from streams.config import EngineSettings
from streams.engine.results import Enriched, Failed
from streams.engine.runners import load_runners
from streams.errors import InferenceError, PhotoError
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
    """One photo's state inside the engine."""

    photo_id: str
    work: Work | None = None
    produced_by: dict[str, dict[str, str]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    phash_variants: list[int] = field(default_factory=list)
    failure: Failed | None = None
    stage: str = "decode_image"  # where it is, for the dead letter if it fails

    def fail(self, error: PhotoError, stage: str) -> None:
        self.failure = Failed(self.photo_id, error, stage, self.timings_ms)
        self.work = None  # free the decoded pixels


class Enricher:
    """Photo bytes in, PhotoEnriched fields out, for every enabled model."""

    def __init__(self, settings: EngineSettings, repository: ModelRepository) -> None:
        self.settings = settings
        self.runners = load_runners(settings, repository)
        self.decoder = Decoder(max_pixels=settings.max_pixels, min_side=self._needed_side())
        self._pool = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        warm = {runner.name: round(runner.warm_up(), 3) for runner in self.runners}
        warm["features"] = round(self._warm_up_features(), 3)
        log.info(
            "engine ready",
            warm_up_s=warm,
            decode_side=self.decoder.min_side,
            providers={r.name: r.session.provider for r in self.runners},
        )

    def _warm_up_features(self) -> float:
        """OpenCV builds its Lab table on first use (~100 ms): before the first photo, not in it."""
        started = time.perf_counter()
        blank = np.full((64, 64, 3), 128, dtype=np.uint8)
        photo = DecodedPhoto(blank, ImageFormat.PNG, 64, 64, 1)
        extract_features(photo, b"", self.settings.blur_threshold)
        return time.perf_counter() - started

    def _needed_side(self) -> int:
        """The smallest decoded long side that loses nothing any runner (or feature) needs."""
        return max([512, *(runner.needed_side() for runner in self.runners)])

    @property
    def model_versions(self) -> dict[str, str]:
        """name -> version of every model that runs (what idempotency compares)."""
        return {m.name: m.version for r in self.runners for m in r.manifests}

    def close(self) -> None:
        """Stop the decode threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def enrich(self, items: Sequence[PhotoInput]) -> list[Enriched | Failed]:
        """Enrich one batch; results are in input order, one per item."""
        return self._infer([f.result() for f in self._submit(items)])

    def enrich_batches(
        self, batches: Iterable[Sequence[PhotoInput]]
    ) -> Iterator[list[Enriched | Failed]]:
        """Enrich batch after batch, decoding batch n+1 while batch n is in inference."""
        pending: list[Future[_Job]] | None = None
        for batch in batches:
            submitted = self._submit(batch)
            if pending is not None:
                yield self._infer([f.result() for f in pending])
            pending = submitted
        if pending is not None:
            yield self._infer([f.result() for f in pending])

    def _submit(self, items: Sequence[PhotoInput]) -> list[Future[_Job]]:
        return [self._pool.submit(self._prepare, item) for item in items]

    def _prepare(self, item: PhotoInput) -> _Job:
        """Decode, features and fitting (a decode thread). Whatever goes wrong stays with this
        photo: a typed PhotoError keeps its reason, anything unexpected is INTERNAL_ERROR."""
        job = _Job(item.photo_id)
        try:
            self._prepare_into(job, item)
        except PhotoError as error:
            job.fail(error, job.stage)
        except Exception as error:
            log.exception("photo failed unexpectedly", photo_id=item.photo_id, stage=job.stage)
            job.fail(PhotoError(f"unexpected {type(error).__name__}: {error}"), job.stage)
        return job

    def _prepare_into(self, job: _Job, item: PhotoInput) -> None:
        started = time.perf_counter()
        try:
            photo = self.decoder.decode(item.data)
        finally:
            job.timings_ms["decode"] = _ms_since(started)
        job.stage = "features"
        started = time.perf_counter()
        features, produced_by, job.phash_variants = extract_features(
            photo, item.data, self.settings.blur_threshold
        )
        job.timings_ms["features"] = _ms_since(started)
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
        job.work = work

    def _infer(self, jobs: list[_Job]) -> list[Enriched | Failed]:
        for runner in self.runners:
            alive = [job for job in jobs if job.work is not None]
            for start in range(0, len(alive), self.settings.max_batch):
                self._run(runner, alive[start : start + self.settings.max_batch])
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
