"""Engine benchmark: decode full vs reduced, per-model images/s vs batch size, engine vs ceiling.

    .venv/bin/python -m benchmarks.engine            # ~5 min on 2 cores
    .venv/bin/python -m benchmarks.engine --quick    # ~1 min: 2 runs, fewer sizes (gpu.sh's)
    .venv/bin/python -m benchmarks.engine --smoke    # ~10 s: that it runs, 1 run of each part

Writes benchmarks/results/engine.json, engine.md and engine.png (not in --smoke). Every number
is the median of several runs with the spread beside it, and the ratios compare variants
measured in this run.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.stats import measure
from streams.engine import Enricher, PhotoInput
from streams.imaging.decode import DecodedPhoto, Decoder
from streams.imaging.features import extract_features
from streams.inference.tasks.base import Runner, Work
from streams.logs import configure_logging
from streams.models.repository import ModelRepository

DECODE_PHOTOS = ("astronaut", "coffee", "rocket")


def bench_decode(
    min_side: int, runs: int, names: Sequence[str] = DECODE_PHOTOS
) -> list[dict[str, Any]]:
    """12 MP JPEG: cv2.imdecode at full size vs the engine's Decoder (DCT-reduced)."""
    rows = []
    for name in names:
        data = photoset.photo(name, "12mp")
        buffer = np.frombuffer(data, np.uint8)
        full = measure(partial(cv2.imdecode, buffer, cv2.IMREAD_COLOR), runs)
        decoder = Decoder(max_pixels=10**9, min_side=min_side)
        reduced = measure(partial(decoder.decode, data), runs)
        shape = decoder.decode(data).image.shape
        eighth = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_8)
        assert eighth is not None, name
        height, width = eighth.shape[:2]
        rows.append(
            {
                "photo": f"{name} {width * 8}x{height * 8}",
                "full_ms": full.median * 1e3,
                "reduced_ms": reduced.median * 1e3,
                "reduced_to": f"{shape[1]}x{shape[0]}",
                "speedup": full.median / reduced.median,
                "full": full.as_dict(),
                "reduced": reduced.as_dict(),
            }
        )
    return rows


def _works(enricher: Enricher, photos: Sequence[DecodedPhoto], runner: Runner) -> list[Work]:
    return [Work(p, prepared={runner.name: runner.prepare(p)}) for p in photos]


def bench_models(
    enricher: Enricher, photos: list[DecodedPhoto], batch_sizes: Sequence[int], runs: int
) -> list[dict[str, Any]]:
    """Images/s of each model alone, on prepared inputs, at each batch size."""
    rows = []
    for runner in enricher.runners:
        for size in batch_sizes:
            batch = [photos[i % len(photos)] for i in range(size)]
            works = _works(enricher, batch, runner)
            timing = measure(partial(runner.run, works), runs)
            rows.append(
                {
                    "model": runner.name,
                    "batch": size,
                    **{f"images_per_s_{k}": v for k, v in timing.per_second(size).items()},
                }
            )
            print(
                f"  {runner.name:22s} batch {size:3d}: {size / timing.median:7.1f} images/s",
                flush=True,
            )
    return rows


def bench_engine(
    enricher: Enricher, photos: list[tuple[str, bytes]], batch: int, runs: int
) -> dict[str, Any]:
    """Whole engine (decode + features + inference, pipelined) vs inference alone."""
    inputs = [PhotoInput(name, data) for name, data in photos]
    batches = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
    engine = measure(lambda: [r for b in enricher.enrich_batches(batches) for r in b], runs)

    decoded = [enricher.decoder.decode(data) for _, data in photos]
    decode = measure(lambda: [enricher.decoder.decode(d) for _, d in photos], runs)
    features = measure(
        lambda: [extract_features(p, 50.0) for p in decoded],
        runs,
    )
    prepared = {r.name: _works(enricher, decoded, r) for r in enricher.runners}
    fit = measure(lambda: [_works(enricher, decoded, r) for r in enricher.runners], runs)

    def inference_only() -> None:
        for runner in enricher.runners:
            works = prepared[runner.name]
            for i in range(0, len(works), batch):
                runner.run(works[i : i + batch])

    ceiling = measure(inference_only, runs)
    parts = decode.median + features.median + fit.median + ceiling.median
    count = len(photos)
    return {
        "photos": count,
        "batch": batch,
        "engine_photos_per_s": engine.per_second(count),
        "inference_only_photos_per_s": ceiling.per_second(count),
        "sum_of_parts_photos_per_s": count / parts,
        "engine_vs_inference_only": ceiling.median / engine.median,
        "stage_ms_per_photo": {
            "decode": decode.median / count * 1e3,
            "features": features.median / count * 1e3,
            "fit": fit.median / count * 1e3,
            "inference": ceiling.median / count * 1e3,
        },
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(report: dict[str, Any]) -> str:
    """The results as the tables the README quotes."""
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores, "
        f"provider {', '.join(sorted(set(report['providers'].values())))}, onnxruntime "
        f"{report['machine']['onnxruntime']}.",
        "",
        "| 12 MP JPEG | full decode ms | reduced decode ms | reduced to | speed-up |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['photo']} | {r['full_ms']:.1f} | {r['reduced_ms']:.1f} | {r['reduced_to']} "
        f"| {r['speedup']:.1f}x |"
        for r in report["decode"]
    ]
    sizes = sorted({r["batch"] for r in report["models"]})
    lines += [
        "",
        "| model (images/s, median) | " + " | ".join(f"b{s}" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for model in dict.fromkeys(r["model"] for r in report["models"]):
        cells = [f"{r['images_per_s_median']:.1f}" for r in report["models"] if r["model"] == model]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    e = report["engine"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in e["stage_ms_per_photo"].items())
    lines += [
        "",
        f"Engine on {e['photos']} mixed photos (1/4 12 MP, 1/4 3 MP, 1/2 0.3 MP), "
        f"batch {e['batch']}:",
        "",
        "| variant | photos/s (median) | range |",
        "|---|---|---|",
    ]
    for key, label in (
        ("engine_photos_per_s", "engine (decode + features + inference)"),
        ("inference_only_photos_per_s", "inference only (ceiling)"),
    ):
        v = e[key]
        lines.append(f"| {label} | {v['median']:.2f} | {v['low']:.2f}-{v['high']:.2f} |")
    lines += [
        f"| sum of the stages run one after another | {e['sum_of_parts_photos_per_s']:.2f} | |",
        "",
        f"Engine / inference-only: **{e['engine_vs_inference_only']:.0%}**. "
        f"Stage cost per photo (ms): {stages}.",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path | IO[bytes]) -> None:
    """images/s vs batch size per model, and decode full vs reduced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for model in dict.fromkeys(r["model"] for r in report["models"]):
        rows = [r for r in report["models"] if r["model"] == model]
        left.errorbar(
            [r["batch"] for r in rows],
            [r["images_per_s_median"] for r in rows],
            yerr=[
                [r["images_per_s_median"] - r["images_per_s_low"] for r in rows],
                [r["images_per_s_high"] - r["images_per_s_median"] for r in rows],
            ],
            marker="o",
            capsize=3,
            label=model,
        )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="images/s (median, range)",
        title="Each model alone",
    )
    left.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.85))
    names = [r["photo"].split()[0] for r in report["decode"]]
    x = np.arange(len(names))
    right.bar(x - 0.2, [r["full_ms"] for r in report["decode"]], 0.4, label="full decode")
    right.bar(x + 0.2, [r["reduced_ms"] for r in report["decode"]], 0.4, label="reduced decode")
    right.set(xticks=x, xticklabels=names, ylabel="ms per 12 MP JPEG", title="Decode")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every section and write JSON, markdown and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, fewer batch sizes and photos")
    output_args(parser, smoke="1 run; 1 decode photo, batch sizes 1 and 4, 4 engine photos")
    args = parser.parse_args(argv)
    out = out_of(args)
    # --smoke: every section once on the fewest photos that still hold each size class
    runs = 1 if args.smoke else 2 if args.quick else 5
    decode_photos = DECODE_PHOTOS[:1] if args.smoke else DECODE_PHOTOS
    sizes = [1, 4] if args.smoke else [1, 4, 16] if args.quick else [1, 2, 4, 8, 16, 32, 64]
    mixed_count = 4 if args.smoke else 8 if args.quick else 48
    engine_runs = 1 if args.smoke else max(2, runs - 2)
    settings = production_settings()
    configure_logging("WARNING", "console")
    repository = ModelRepository.from_settings(settings)
    enricher = Enricher(settings.engine, repository)
    try:
        print("decode: 12 MP JPEG, full vs reduced", flush=True)
        decode = bench_decode(enricher.decoder.min_side, runs, decode_photos)
        photos = [enricher.decoder.decode(photoset.photo(n, "small")) for n in photoset.SOURCES]
        print("models: images/s vs batch size", flush=True)
        models = bench_models(enricher, photos, sizes, runs)
        print("engine vs inference-only", flush=True)
        mixed = photoset.mixed_set(mixed_count)
        engine = bench_engine(enricher, mixed, settings.engine.max_batch, engine_runs)
    finally:
        enricher.close()
    report = {
        "machine": machine(),
        "providers": {r.name: r.session.provider for r in enricher.runners},
        "decode": decode,
        "models": models,
        "engine": engine,
    }
    write_results("engine", report, markdown(report), out)
    if out is None:
        plot(report, io.BytesIO())  # drawn all the same: a broken plot fails the smoke run
    else:
        plot(report, out / "engine.png")
        print(f"wrote {out}/engine.json, engine.md, engine.png")


if __name__ == "__main__":
    main()
