"""Enricher: decode photos in a thread pool, run every enabled model in batches, isolate failures.

    enricher = Enricher(settings.engine, repository)
    results = enricher.enrich([PhotoInput("p1", jpeg_bytes), ...])  # -> Enriched | Failed each

``enrich_batches`` overlaps the next batch's decoding (threads; OpenCV releases the GIL) with the
current batch's inference. One photo's failure, at any stage, never costs the others in its batch:
a batch that fails inference is re-run photo by photo to find the one to blame (each model's run
over a chunk, production's or a variant's: streams/engine/running.py).

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
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from streams.config import EngineSettings, Settings
from streams.engine.drift import DriftWatch
from streams.engine.job import Job
from streams.engine.results import Enriched, Failed
from streams.engine.runners import check_enabled, enabled_manifests, open_runners, session_config
from streams.engine.running import ms_since, run_production, run_variant, start_variant
from streams.engine.variants import (
    Variant,
    VariantWatch,
    open_variants,
    serve_canary,
    wanted,
)
from streams.errors import DeadlineExceededError, PhotoError
from streams.imaging.budget import Budget
from streams.imaging.crops import CROPPER, crops_of, parse_ratio, salient_map
from streams.imaging.decode import DecodedPhoto, Decoder
from streams.imaging.features import extract_features
from streams.imaging.sniff import ImageFormat
from streams.imaging.thumbnails import THUMBNAILER, render_thumbnails, thumbnail_specs
from streams.inference.tags import with_people_and_text
from streams.inference.tasks import RUNNERS
from streams.inference.tasks.base import Runner, Work
from streams.logs import get_logger
from streams.models.manifest import DEFAULT_MIN_TAG_SCORE
from streams.models.repository import ModelRepository

log = get_logger("darkroom.engine")

Submitted = tuple[Job, Future[Job]]  # one photo handed to the decode threads
Pending = list[Submitted]  # a submitted batch, in input order


@dataclass(frozen=True)
class PhotoInput:
    """A photo's id and its bytes (already fetched)."""

    photo_id: str
    data: bytes
    user_id: str = ""  # which variants run for it (streams/models/rollout.py)


class Enricher:
    """Photo bytes in, PhotoEnriched fields out, for every enabled model."""

    def __init__(self, settings: EngineSettings, repository: ModelRepository) -> None:
        self.settings = settings
        enabled = check_enabled(enabled_manifests(settings, repository))
        config = session_config(settings, repository)
        production = open_runners(enabled, repository, config)
        for runner in production:
            runner.max_run_pixels = settings.max_inference_pixels
        self.runners: list[Runner] = [*production]
        # faces and text lines become tags at the classifier's threshold (or the default)
        self.min_tag_score = min(
            (m.tags.min_score for m in enabled.values() if m.tags is not None),
            default=DEFAULT_MIN_TAG_SCORE,
        )
        self.variants = open_variants(
            wanted(settings, repository), enabled, production, repository, config, RUNNERS
        )
        self.watch = VariantWatch(settings.variant_max_failure_share, settings.variant_min_photos)
        self.drift = DriftWatch(settings.drift_window, settings.drift_significance)
        for name, why in repository.disabled.items():  # shown with the ones switched off later
            self.watch.switched_off[name] = f"broken manifest: {why}"
        self.thumbnail_specs = thumbnail_specs(
            settings.thumbnail_sizes,
            settings.thumbnail_formats,
            settings.thumbnail_quality,
            settings.thumbnail_webp_effort,
            settings.thumbnail_webp_max_size,
        )
        self.crop_ratios = [parse_ratio(r) for r in settings.crop_ratios]
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
        self.variants = [v for v in self.variants if self._warmed_up(v, warm)]
        warm["features"] = round(self._warm_up_features(), 3)
        log.info(
            "engine ready",
            warm_up_s=warm,
            decode_side=self.decoder.min_side,
            providers={r.name: r.session.provider for r in self._all_runners()},
            variants={v.name: f"{v.mode} {v.manifest.rollout.percent:g}%" for v in self.variants},  # type: ignore[union-attr]
        )

    def _warmed_up(self, variant: Variant, warm: dict[str, float]) -> bool:
        """An experiment that cannot even run is dropped, loudly; production goes on."""
        try:
            warm[variant.runner.name] = round(variant.runner.warm_up(), 3)
        except Exception as error:
            log.exception("variant dropped: it failed its warm-up run", variant=variant.name)
            self.watch.switched_off[variant.name] = f"failed its warm-up run: {error!r}"
            return False
        return True

    def _all_runners(self) -> list[Runner]:
        return [*self.runners, *(variant.runner for variant in self.variants)]

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
        """The smallest decoded long side that loses nothing any runner, feature or thumbnail
        needs (a 1440 px preview of a 12 MP JPEG: decoded at 1/2 scale, not 1/4)."""
        thumbnails = self.settings.thumbnail_sizes
        return max([512, *thumbnails, *(runner.needed_side() for runner in self._all_runners())])

    @property
    def model_versions(self) -> dict[str, str]:
        """name -> version of every production model that runs, and of the thumbnailer when
        thumbnails are made (what idempotency compares: a photo recorded without thumbnails, or
        with another thumbnailer, is made again by a replay)."""
        versions = {m.name: m.version for r in self.runners for m in r.manifests}
        if self.thumbnail_specs:
            versions[THUMBNAILER["name"]] = THUMBNAILER["version"]
        return versions

    def model_versions_for(self, user_id: str) -> dict[str, str]:
        """The versions that serve ``user_id``: production's, with the user's canaries instead."""
        versions = self.model_versions
        for variant in self.variants:
            if variant.mode == "canary" and variant.applies_to(user_id):
                versions.pop(str(variant.manifest.variant_of), None)
                versions[variant.name] = variant.manifest.version
        return versions

    def close(self) -> None:
        """Stop the decode threads (waits for a late decode to end)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def enrich(self, items: Sequence[PhotoInput]) -> list[Enriched | Failed]:
        """Enrich one batch; results are in input order, one per item."""
        return self.complete(self.submit(items))

    def enrich_batches(
        self, batches: Iterable[Sequence[PhotoInput]]
    ) -> Iterator[list[Enriched | Failed]]:
        """Enrich batch after batch, decoding batch n+1 while batch n is in inference."""
        pending: Pending | None = None
        for batch in batches:
            submitted = self.submit(batch)
            if pending is not None:
                yield self.complete(pending)
            pending = submitted
        if pending is not None:
            yield self.complete(pending)

    def submit(self, items: Sequence[PhotoInput]) -> Pending:
        """Start decoding ``items`` in the decode threads; ``complete`` runs their inference.

        Between the two, another batch may be completed: that overlap is the engine's speed."""
        jobs = [
            Job(item.photo_id, [v for v in self.variants if v.applies_to(item.user_id)])
            for item in items
        ]
        return [
            (job, self._pool.submit(self._prepare, job, item))
            for job, item in zip(jobs, items, strict=True)
        ]

    def complete(self, pending: Pending) -> list[Enriched | Failed]:
        """Wait for a submitted batch's decoding, run its inference; results in input order."""
        results = self._infer(self._collect(pending))
        runs = (run for r in results if isinstance(r, Enriched) for run in r.variants)
        self.variants = self.watch.prune(self.variants, runs)
        self.drift.observe(results)
        return results

    def abandon(self, pending: Pending) -> None:
        """A submitted batch that will never be completed: free its slots and pixels."""
        for job, future in pending:
            future.cancel()
            job.abandon()

    def _collect(self, pending: Pending) -> list[Job]:
        """Each photo's prepared job, or a DEADLINE_EXCEEDED one for a photo not done in time."""
        limit = self.settings.photo_deadline_s
        jobs: list[Job] = []
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
            late = Job(job.photo_id, stage=job.stage, timings_ms=dict(job.timings_ms))
            late.fail(error, job.stage)
            log.warning("photo past its deadline", photo_id=job.photo_id, stage=job.stage)
            jobs.append(late)
        return jobs

    def _prepare(self, job: Job, item: PhotoInput) -> Job:
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

    def _prepare_into(self, job: Job, item: PhotoInput) -> None:
        started = time.perf_counter()
        try:
            photo = self.decoder.decode(item.data, deadline=job.deadline)
        finally:
            job.timings_ms["decode"] = ms_since(started)
        job.check_deadline()
        job.stage = "features"
        started = time.perf_counter()
        features, produced_by, job.phash_variants, job.dct_block = extract_features(
            photo, self.settings.blur_threshold
        )
        if self.crop_ratios:
            job.saliency = salient_map(photo.image)
        job.timings_ms["features"] = ms_since(started)
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
        for variant in job.variants:
            try:  # a variant's trouble is measured, never the photo's failure
                work.prepared[variant.runner.name] = variant.runner.prepare(photo)
            except Exception as error:
                job.variant_errors[variant.name] = f"preprocess: {error!r}"
        job.timings_ms["preprocess"] = ms_since(started)
        job.check_deadline()
        job.stage = "thumbnails"
        started = time.perf_counter()
        try:
            job.thumbnails = render_thumbnails(photo, item.data, self.thumbnail_specs)
        except Exception as error:  # the photo's fields stand without its thumbnails
            log.warning("thumbnails failed", photo_id=item.photo_id, error=repr(error))
            job.thumbnail_error = f"{type(error).__name__}: {error}"
        job.timings_ms["thumbnails"] = ms_since(started)
        job.check_deadline()
        job.work = work

    def _infer(self, jobs: list[Job]) -> list[Enriched | Failed]:
        for runner in self.runners:
            alive = [job for job in jobs if job.work is not None]
            size = runner.photos_per_run(self.settings.max_batch)
            for start in range(0, len(alive), size):
                run_production(runner, alive[start : start + size])
        for variant in self.variants:
            chosen = [job for job in jobs if start_variant(job, variant)]
            size = variant.runner.photos_per_run(self.settings.max_batch)
            for start in range(0, len(chosen), size):
                run_variant(variant, chosen[start : start + size])
        for job in jobs:
            # after every variant ran: a shadow of the same model compares with production
            for run in job.variant_runs.values():
                if run.mode == "canary" and run.fields is not None and job.work is not None:
                    serve_canary(job.work.fields, job.produced_by, run)
        return [self._result(job) for job in jobs]

    def _result(self, job: Job) -> Enriched | Failed:
        if job.failure is not None:
            return job.failure
        assert job.work is not None
        tags = with_people_and_text(job.work.fields, self.min_tag_score)
        if tags is not None:
            job.work.fields["tags"] = tags
        if self.crop_ratios:
            job.work.fields["crops"] = crops_of(job.work.fields, self.crop_ratios, job.saliency)
            job.produced_by["crops"] = dict(CROPPER)
        return Enriched(
            job.photo_id,
            job.work.fields,
            job.produced_by,
            job.timings_ms,
            job.phash_variants,
            job.dct_block,
            list(job.variant_runs.values()),
            job.thumbnails,
            job.thumbnail_error,
        )
