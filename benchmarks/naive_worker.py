"""The naive baseline: the Faust worker most people write first.

One event at a time; the photo decoded at full resolution; every model run on that one photo
(batch 1) inside the agent, blocking the event loop; OCR with its reference settings (rapidocr's
defaults: the short side scaled up to 736, at most 2000). Same broker, topics, client settings,
models and outputs as Darkroom, so the comparison measures only how the work is done.

    DARKROOM_...=... python -m benchmarks.naive_worker    (benchmarks/e2e.py starts it)
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import cv2
import faust
import numpy as np

from streams.blobs import BlobStore
from streams.config import load_settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import EventType, SchemaRepository
from streams.engine import Enriched
from streams.engine.runners import load_runners
from streams.imaging.decode import DecodedPhoto, apply_orientation
from streams.imaging.exif import read_exif
from streams.imaging.features import extract_features
from streams.imaging.header import exif_orientation
from streams.imaging.sniff import sniff
from streams.inference.tasks.base import Work
from streams.inference.tasks.ocr import OcrRunner
from streams.kafka.profiles import get_profile
from streams.models.repository import ModelRepository
from streams.pipeline import OutputBuilder

REFERENCE_OCR = {"limit_side_len": 736, "limit_type": "min"}


def main() -> None:
    """Build the naive app and run it until SIGTERM."""
    settings = load_settings()
    profile = get_profile(settings.kafka.profile)
    schemas = SchemaRepository(settings.paths.schemas)
    codec = SingleObjectCodec(schemas)
    blobs = BlobStore.from_settings(settings)
    outputs = OutputBuilder(schemas)
    repository = ModelRepository.from_settings(settings)
    runners = load_runners(settings.engine, repository)
    for runner in runners:
        if isinstance(runner, OcrRunner):
            runner.limit_side_len = REFERENCE_OCR["limit_side_len"]
            runner.limit_type = str(REFERENCE_OCR["limit_type"])
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    # the profile's Faust options (timeouts, batch sizes) by name, as the Darkroom worker's
    tuning: dict[str, Any] = dict(profile.faust)
    app = faust.App(
        settings.worker.app_id,
        broker=f"darkroom://{settings.kafka.bootstrap}",
        store="memory://",
        datadir=str(settings.worker.data_dir),
        topic_partitions=settings.topics.partitions,
        web_enabled=True,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=settings.worker.web_port,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        **tuning,
    )
    app.fetch_max_wait_ms = profile.fetch_max_wait_ms  # type: ignore[attr-defined]
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    uploads = app.topic(settings.topics.uploaded, **raw)
    enriched = app.topic(settings.topics.enriched, **raw)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        assigned = [tp.partition for tp in app.consumer.assignment()]
        return web.json({"status": "ok", "partitions": assigned})

    def enrich_one(upload: dict[str, Any]) -> dict[str, Any]:
        """Every step on this one photo, inside the agent: it blocks the event loop."""
        started = time.perf_counter()
        data = blobs.fetch(upload["blob"], upload.get("content_sha256"))
        image = cv2.imdecode(
            np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        )
        image = apply_orientation(np.asarray(image, np.uint8), exif_orientation(data))
        fmt = sniff(data[:32])
        assert fmt is not None
        photo = DecodedPhoto(image, fmt, image.shape[1], image.shape[0], 1, read_exif(data))
        # no duplicate search here: the hashes' turned variants and the DCT block go unused
        fields, produced_by, _, _ = extract_features(photo, settings.engine.blur_threshold)
        work = Work(
            photo,
            fields={"format": fmt.value, "width": photo.width, "height": photo.height, **fields},
        )
        for runner in runners:  # each model alone, on this one photo
            work.prepared[runner.name] = runner.prepare(photo)
            (output,) = runner.run([work])
            work.fields.update(output)
            produced_by.update(dict.fromkeys(output, runner.provenance))
        result = Enriched(
            upload["photo_id"],
            work.fields,
            produced_by,
            {"total": (time.perf_counter() - started) * 1000},
        )
        return outputs.enriched(upload, result, duplicate_of=None)

    @app.agent(uploads)
    async def enrich(stream: Any) -> None:
        async for event in stream.events():
            try:
                record = enrich_one(codec.decode(event.value).record)
            except Exception:
                # Faust logs nothing when an agent raises: the worker stayed up, consumed
                # nothing, and e2e only timed out (issue 25); its log now says why
                traceback.print_exc()
                raise
            await enriched.send(key=event.key, value=codec.encode(EventType.PHOTO_ENRICHED, record))

    faust.Worker(
        app, loglevel="WARNING", override_logging=False, quiet=True
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
