"""Where OCR's time goes, and what a cascade's first look lets through.

    .venv/bin/python -m benchmarks.ocr_cost [--photos 120] [--gate 320]
    .venv/bin/python -m benchmarks.ocr_cost --smoke    # ~5 s: that it runs (3 photos)

On the shadow experiments' photos (benchmarks.photoset.experiment_set: a third carry a pasted
line of text), one photo at a time through Darkroom's OCR runner: milliseconds per photo of
detection at the full size against recognition of the line crops, and how many photos with and
without text pass a first look at ``--gate`` px (what models/ppocr_det_cascade does). It prints
its report and writes no file.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import cv2
import numpy as np

from benchmarks.photoset import experiment_set
from streams.config import load_settings
from streams.engine import Enricher
from streams.inference import ocr_pipeline as pp
from streams.inference.tasks.ocr import OcrRunner
from streams.logs import configure_logging
from streams.models.manifest import Task
from streams.models.repository import ModelRepository


def main(argv: Sequence[str] | None = None) -> None:
    """Time detection and recognition per photo; count what the first look passes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--gate", type=int, default=320)
    # --smoke alone, not output_args' --out: this benchmark writes no results to redirect
    parser.add_argument(
        "--smoke", action="store_true", help="3 photos, one with text: that it runs"
    )
    args = parser.parse_args(argv)
    if args.smoke:  # photo 0 carries text, 1 and 2 do not (photoset.experiment_set)
        args.photos = 3
    configure_logging("WARNING", "console")
    settings = load_settings()
    repository = ModelRepository.from_settings(settings)
    # the detector that serves (a gate in front of it is bypassed: _detect is called directly)
    detector = next(m.name for m in repository.production() if m.task is Task.OCR_DETECT)
    engine = settings.engine.model_copy(
        update={"models": f"{detector},ppocr_rec", "variants": "none"}
    )
    enricher = Enricher(engine, repository)
    (ocr,) = enricher.runners
    assert isinstance(ocr, OcrRunner)
    detect_s = recognise_s = 0.0
    crops_seen = 0
    passed = {True: 0, False: 0}
    photos = {True: 0, False: 0}
    for name, data in experiment_set(args.photos):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        has_text = name.endswith("-text")
        photos[has_text] += 1
        look = ocr._detect([pp.det_resize(image, args.gate, "max")])[0]
        passed[has_text] += bool(len(look.quads))
        started = time.perf_counter()
        found = ocr._detect([pp.det_resize(image, ocr.limit_side_len, ocr.limit_type)])[0]
        detect_s += time.perf_counter() - started
        crops = pp.crop_lines(image, found.quads)
        crops_seen += len(crops)
        started = time.perf_counter()
        ocr._recognise(crops)
        recognise_s += time.perf_counter() - started
    enricher.close()
    n = sum(photos.values())
    print(
        f"{n} photos: detection at {ocr.limit_side_len} px {1000 * detect_s / n:.1f} ms/photo, "
        f"recognition {1000 * recognise_s / n:.1f} ms/photo ({crops_seen / n:.1f} crops/photo)"
    )
    print(
        f"first look at {args.gate} px passes {passed[True]}/{photos[True]} photos with text and "
        f"{passed[False]}/{photos[False]} without"
    )


if __name__ == "__main__":
    main()
