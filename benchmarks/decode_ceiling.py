"""The decode-bound ceiling: how many photos/s the CPU side alone can prepare for inference.

    .venv/bin/python -m benchmarks.decode_ceiling [--threads 1,2,16] [--photos 48]
    .venv/bin/python -m benchmarks.decode_ceiling --smoke    # ~5 s: that it runs

With a GPU, inference stops being the bottleneck and decoding (plus EXIF, quality, colours,
hashes and fitting each photo to every model's input) becomes it. This runs exactly that part
of the engine, its decode pool at each ``--threads`` size, on the benchmark's mixed set (12 MP,
phone and small JPEGs), and writes benchmarks/results/decode_ceiling.{json,md} (not in
--smoke): the most photos/s any inference provider could be fed on this machine.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.engine import machine
from benchmarks.stats import measure
from streams.engine import Enricher, PhotoInput
from streams.logs import configure_logging
from streams.models.repository import ModelRepository


def prepare_rate(threads: int, photos: list[tuple[str, bytes]], runs: int) -> dict[str, Any]:
    """Photos/s of decode + features + preprocessing with ``threads`` decode threads."""
    settings = production_settings()
    engine = settings.engine.model_copy(update={"decode_threads": threads})
    enricher = Enricher(engine, ModelRepository.from_settings(settings))
    items = [PhotoInput(name, data) for name, data in photos]
    try:
        # the engine's own decode stage, without the inference that follows it in enrich()
        timing = measure(lambda: enricher._collect(enricher.submit(items)), runs)
    finally:
        enricher.close()
    return {"threads": threads, "seconds": timing.as_dict(), **timing.per_second(len(items))}


def main(argv: Sequence[str] | None = None) -> None:
    """Measure each thread count; write JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,2,{os.cpu_count() or 1}")
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    output_args(parser, smoke="4 mixed photos (every size class), 2 threads, 1 run")
    args = parser.parse_args(argv)
    if args.smoke:  # the decode pool once, with more than one thread; the numbers mean nothing
        args.threads, args.photos, args.runs = "2", 4, 1
    configure_logging("WARNING", "console")
    photos = photoset.mixed_set(args.photos)
    counts = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    rows = [prepare_rate(n, photos, args.runs) for n in counts]
    report = {"machine": machine(), "photos": len(photos), "rows": rows}
    lines = [
        f"Decode + features + preprocessing of {len(photos)} mixed photos (median of "
        f"{args.runs} runs; range in brackets).",
        "",
        "| decode threads | photos/s |",
        "| ---: | --- |",
        *(
            f"| {r['threads']} | {r['median']:.1f} [{r['low']:.1f}, {r['high']:.1f}] |"
            for r in rows
        ),
    ]
    write_results("decode_ceiling", report, "\n".join(lines) + "\n", out_of(args))


if __name__ == "__main__":
    main()
