"""Thumbnails: Darkroom's (from the engine's decoded pixels) against libvips and Pillow making the
same sizes from the same files, and what making them costs the engine.

    .venv/bin/python -m benchmarks.thumbnails            # ~4 min
    .venv/bin/python -m benchmarks.thumbnails --smoke    # ~20 s: one photo a size, one round

Per photo size class (0.3, 3 and 12 MP JPEGs of benchmarks/photoset.py), each maker produces
the engine's default thumbnails (256 and 1440 px on the long side, WebP and JPEG, quality 80):

- Darkroom: ``render_thumbnails`` on the photo as the engine decodes it anyway (timed: the
  rendering only; the engine pays its decoding for the models). Decoding at 1440 px instead of
  the 960 the models need is a cost of its own, measured by the engine rows below.
- libvips (pyvips, the wheel's libvips): ``thumbnail_buffer`` per size (shrink-on-load), then
  ``webpsave_buffer`` / ``jpegsave_buffer`` with metadata stripped: decode included.
- Pillow: ``Image.open``, ``draft`` (JPEG DCT scaling), ``thumbnail`` per size, ``save``: decode
  included.

Quality: SSIM (scikit-image, on grey) of each decoded asset against a reference resize of the
full-resolution photo (Pillow's Lanczos, no reducing gap). Bytes at the same SSIM: Darkroom's
WebP at qualities 50-95, the bytes interpolated at libvips' SSIM, over libvips' bytes (goal:
within 5%). Engine cost: the engine alone on the e2e mix with thumbnails off and on, taken in
turn, photos/s (goal: thumbnails cost at most 10% of a photo's time).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import cv2
import numpy as np
import pyvips
from PIL import Image
from skimage.metrics import structural_similarity

from benchmarks import out_of, output_args, photoset, production_settings, ran_on, write_results
from benchmarks.engine import machine
from streams.engine import Enricher, PhotoInput
from streams.imaging.decode import Decoder
from streams.imaging.thumbnails import (
    embedded_profile,
    encode,
    render_thumbnails,
    thumbnail_pixels,
    thumbnail_specs,
)
from streams.logs import configure_logging
from streams.models.repository import ModelRepository

SIZES = [256, 1440]
NO_THUMBNAILS = "no thumbnails"
ALL_WEBP = {"thumbnail_webp_max_size": 4096}  # every size in WebP too
ENGINE_VARIANTS: dict[str, dict[str, Any]] = {
    NO_THUMBNAILS: {"thumbnail_sizes": []},
    "256 px WebP + JPEG, 960 px JPEG (the default)": {"thumbnail_sizes": [256, 960]},
    "256 px WebP + JPEG, 1440 px JPEG": {"thumbnail_sizes": [256, 1440]},
    "256 px, WebP + JPEG": {"thumbnail_sizes": [256]},
    "256 + 960 px, WebP + JPEG": {"thumbnail_sizes": [256, 960], **ALL_WEBP},
    "256 + 1440 px, WebP + JPEG": {"thumbnail_sizes": [256, 1440], **ALL_WEBP},
    "256 + 1440 px, WebP (effort 0) + JPEG": {
        "thumbnail_sizes": [256, 1440],
        "thumbnail_webp_effort": 0,
        **ALL_WEBP,
    },
}
QUALITY = 80
CLASSES = {"0.3 MP": "small", "3 MP": "phone", "12 MP": "12mp"}
Made = dict[str, bytes]  # "256.webp" -> bytes


def darkroom_maker(min_side: int, effort: int = 4) -> Callable[[bytes], Made]:
    decoder = Decoder(max_pixels=100_000_000, min_side=min_side)
    specs = thumbnail_specs(SIZES, ["webp", "jpeg"], QUALITY, effort, webp_max_size=4096)
    decoded: dict[bytes, Any] = {}

    def make(data: bytes) -> Made:
        photo = decoded.setdefault(data, decoder.decode(data))  # the engine decodes anyway
        return {t.name: t.data for t in render_thumbnails(photo, data, specs)}

    return make


def vips(data: bytes) -> Made:
    made: Made = {}
    for size in SIZES:
        # one decode-and-shrink a size, kept in memory for both encoders (sequential otherwise)
        image = pyvips.Image.thumbnail_buffer(data, size, height=size, size="down").copy_memory()
        made[f"{size}.webp"] = image.webpsave_buffer(Q=QUALITY, strip=True)
        made[f"{size}.jpg"] = image.jpegsave_buffer(Q=QUALITY, strip=True, optimize_coding=True)
    return made


def pillow(data: bytes) -> Made:
    made: Made = {}
    for size in SIZES:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (size, size))
            image = opened.convert("RGB")
            image.thumbnail((size, size))
        for fmt, name in (("WEBP", "webp"), ("JPEG", "jpg")):
            buffer = io.BytesIO()
            image.save(buffer, fmt, quality=QUALITY, optimize=True)
            made[f"{size}.{name}"] = buffer.getvalue()
    return made


def reference(data: bytes, size: int) -> np.ndarray:
    """The full-resolution photo resized with Lanczos, grey."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    scale = min(1.0, size / max(image.size))
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(target, Image.Resampling.LANCZOS).convert("L"))


def ssim(asset: bytes, ref: np.ndarray) -> float:
    grey = cv2.imdecode(np.frombuffer(asset, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert grey is not None, "an asset that does not decode"
    if grey.shape != ref.shape:  # a pixel of rounding apart: compare at the reference's size
        grey = cv2.resize(grey, (ref.shape[1], ref.shape[0]), interpolation=cv2.INTER_AREA)
    score = structural_similarity(grey, ref, data_range=255)  # type: ignore[no-untyped-call]
    return float(score)


def timed(make: Callable[[bytes], Made], data: bytes, rounds: int) -> tuple[float, Made]:
    made = make(data)  # warm: caches, the decoded photo for Darkroom
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        made = make(data)
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds), made


def bytes_at_ssim(data: bytes, size: int, target: float, ref: np.ndarray) -> float | None:
    """Darkroom's WebP bytes at SSIM ``target``, interpolated between qualities 50-95 (None
    when ``target`` is outside what they reach)."""
    photo = Decoder(max_pixels=100_000_000, min_side=max(SIZES)).decode(data)
    pixels = thumbnail_pixels(photo, size, embedded_profile(data))
    points = sorted(
        (ssim(asset, ref), len(asset))
        for asset in (encode(pixels, "webp", quality) for quality in range(50, 100, 5))
    )
    for (s0, b0), (s1, b1) in pairwise(points):
        if s0 <= target <= s1 and s1 > s0:
            return b0 + (b1 - b0) * (target - s0) / (s1 - s0)
    return None


def compare(names: dict[str, list[bytes]], rounds: int) -> list[dict[str, Any]]:
    """Per size class and maker: ms a photo, bytes and SSIM per asset; Darkroom's WebP bytes
    at libvips' SSIM."""
    makers = {
        "Darkroom": darkroom_maker(max(SIZES)),
        "Darkroom, WebP effort 0": darkroom_maker(max(SIZES), effort=0),
        "libvips": vips,
        "Pillow": pillow,
    }
    rows = []
    for label, photos in names.items():
        for maker_name, make in makers.items():
            ms: list[float] = []
            at_vips: list[float] = []
            sizes: dict[str, list[int]] = {}
            scores: dict[str, list[float]] = {}
            for data in photos:
                spent, made = timed(make, data, rounds)
                ms.append(spent)
                theirs = vips(data) if maker_name == "Darkroom" else {}
                for name, asset in made.items():
                    size = int(name.split(".")[0])
                    ref = reference(data, size)
                    sizes.setdefault(name, []).append(len(asset))
                    scores.setdefault(name, []).append(ssim(asset, ref))
                    if name in theirs and name.endswith(".webp"):
                        found = bytes_at_ssim(data, size, ssim(theirs[name], ref), ref)
                        if found is not None:
                            at_vips.append(found / len(theirs[name]))
            rows.append(
                {
                    "photos": label,
                    "maker": maker_name,
                    "ms_a_photo": statistics.median(ms),
                    "bytes": {n: statistics.mean(v) for n, v in sorted(sizes.items())},
                    "ssim": {n: statistics.mean(v) for n, v in sorted(scores.items())},
                    "webp_bytes_at_vips_ssim": statistics.mean(at_vips) if at_vips else None,
                }
            )
            print(rows[-1], flush=True)
    return rows


def engine_cost(photos: int, rounds: int) -> dict[str, Any]:
    """The engine alone with thumbnails off and on, in turn: photos/s."""
    base = production_settings().engine
    repository = ModelRepository.from_settings(production_settings())
    inputs = [PhotoInput(n, d) for n, d in photoset.mixed_set(photos)]
    batches = [inputs[i : i + 16] for i in range(0, len(inputs), 16)]
    variants = {name: base.model_copy(update=change) for name, change in ENGINE_VARIANTS.items()}
    engines = {name: Enricher(settings, repository) for name, settings in variants.items()}
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        list(engine.enrich_batches(batches[:1]))  # warm
    for _ in range(rounds):
        for name, engine in engines.items():
            started = time.perf_counter()
            for _batch in engine.enrich_batches(batches):
                pass
            seconds[name].append(time.perf_counter() - started)
    for engine in engines.values():
        engine.close()
    rates = {name: photos / statistics.median(s) for name, s in seconds.items()}
    off = rates[NO_THUMBNAILS]
    return {
        "photos": photos,
        "rounds": rounds,
        "photos_per_s": rates,
        "cost": {name: 1 - rate / off for name, rate in rates.items() if name != NO_THUMBNAILS},
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Thumbnails",
        "",
        ran_on("thumbnails", result["machine"])
        + f": 256 and 1440 px, WebP and JPEG, quality {QUALITY}; "
        "median ms a photo (all four assets), mean bytes and SSIM against a Lanczos resize "
        "of the full photo.",
        "",
        "| photos | maker | ms a photo | 256.webp bytes (SSIM) | 1440.webp bytes (SSIM) | "
        "256.jpg bytes | 1440.jpg bytes | Darkroom WebP bytes at libvips' SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        b, q = row["bytes"], row["ssim"]
        at = row["webp_bytes_at_vips_ssim"]
        lines.append(
            f"| {row['photos']} | {row['maker']} | {row['ms_a_photo']:.1f} | "
            f"{b['256.webp']:,.0f} ({q['256.webp']:.3f}) | {b['1440.webp']:,.0f} "
            f"({q['1440.webp']:.3f}) | {b['256.jpg']:,.0f} | {b['1440.jpg']:,.0f} | "
            + (f"{at:.1%} of libvips' |" if at is not None else "|")
        )
    engine = result["engine"]
    lines += [
        "",
        f"The engine alone on {engine['photos']} photos of the e2e mix, {engine['rounds']} "
        "rounds of each variant in turn (goal: thumbnails cost at most 10% of its photos/s):",
        "",
        "| variant | photos/s | cost |",
        "|---|---|---|",
    ]
    for name, rate in engine["photos_per_s"].items():
        cost = engine["cost"].get(name)
        lines.append(f"| {name} | {rate:.2f} | {'' if cost is None else f'{cost:.1%}'} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-size", type=int, default=4, help="photos per size class")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per photo")
    output_args(parser, smoke="one photo a size class, one round, 16 photos in the engine")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    per, rounds = (1, 1) if args.smoke else (args.per_size, args.rounds)
    names = {
        label: [photoset.photo(source, size) for source in photoset.SOURCES[:per]]
        for label, size in CLASSES.items()
    }
    result = {
        "machine": machine(),
        "rows": compare(names, rounds),
        "engine": engine_cost(16 if args.smoke else 96, 1 if args.smoke else 3),
    }
    write_results("thumbnails", result, report(result), out_of(args))


if __name__ == "__main__":
    main()
