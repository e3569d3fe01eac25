"""Memory benchmark: the engine's resident memory on photos small as bytes and huge as pixels.

    .venv/bin/python -m benchmarks.memory            # ~2 min on 2 cores
    .venv/bin/python -m benchmarks.memory --smoke    # ~10 s: that it runs (1 batch of 2)

A flat 10000x10000 PNG is ~300 KB of bytes but 300 MB of BGR pixels; a 1x100000 PNG strip is
~60 KB and drove an unguarded resize to 18 GB. This measures the process's resident memory when
idle (the Enricher loaded and warmed up), its peak during ``enrich`` of a batch of 16 flat PNGs
(the kernel's high-water mark, reset before each batch through /proc/self/clear_refs, and a
sampling thread as a fallback) and what stays resident afterwards. Goals: peak < idle + 2 GB,
after < idle + 1 GB, and the strip refused as DEGENERATE_IMAGE without a spike. Exits 1 when a
goal is missed (not in --smoke: 2 photos say nothing of them); a watchdog ends the run (exit 3)
before a regression can exhaust the machine.

Writes benchmarks/results/memory.json and memory.md (not in --smoke).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import out_of, output_args, production_settings, write_results
from benchmarks.engine import machine
from streams.engine import Enricher, Failed, PhotoInput
from streams.logs import configure_logging
from streams.models.repository import ModelRepository

GB = 1_000_000_000
MB = 1_000_000
BATCH = 16  # flat photos in a batch: the engine's max_batch
PEAK_GOAL = 2 * GB  # above idle, during a batch of 16 flat 100 MP PNGs
AFTER_GOAL = 1 * GB  # above idle, once the batch is done
STRIP_PEAK_GOAL = 256 * MB  # above the RSS before it: a refused photo costs next to nothing
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident bytes of this process now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def _high_water() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _reset_high_water() -> bool:
    """Linux >= 4.0 resets VmHWM to the current RSS on "5"; False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakSampler:
    """Peak RSS during a ``with`` block; ends the process if RSS passes ``abort_at`` bytes."""

    def __init__(self, abort_at: int, interval_s: float = 0.005) -> None:
        self.abort_at = abort_at
        self.interval_s = interval_s
        self.sampled = 0
        self.kernel: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = rss()
            self.sampled = max(self.sampled, now)
            if now > self.abort_at:
                print(f"ABORT: RSS {now / MB:.0f} MB > {self.abort_at / MB:.0f} MB", flush=True)
                os._exit(3)  # a runaway would take the shared machine down with it

    def __enter__(self) -> PeakSampler:
        self.sampled = rss()
        reset = _reset_high_water()
        self._thread.start()
        self._reset = reset
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sampled = max(self.sampled, rss())
        self.kernel = _high_water() if self._reset else None

    @property
    def peak(self) -> int:
        """The kernel's exact high-water mark where it could be reset, else the sampled one."""
        return max(self.sampled, self.kernel or 0)


def write_pngs(folder: Path) -> dict[str, bytes]:
    """The two attack photos, built once in ``folder`` (flat PNGs compress ~1000:1)."""
    photos: dict[str, bytes] = {}
    for name, shape in (("flat", (10_000, 10_000, 3)), ("strip", (1, 100_000, 3))):
        path = folder / f"{name}.png"
        image = np.full(shape, 200, dtype=np.uint8)
        image[:, : shape[1] // 2] = 60  # two tones, so the photo is not trivially constant
        ok, encoded = cv2.imencode(".png", image)
        assert ok, name
        del image
        path.write_bytes(encoded.tobytes())
        photos[name] = path.read_bytes()
    return photos


def measure_case(
    enricher: Enricher, items: list[PhotoInput], idle: int, abort_above: int
) -> dict[str, Any]:
    """Peak during and RSS after one ``enrich`` call, both relative to ``idle``."""
    gc.collect()
    before = rss()
    started = time.perf_counter()
    with PeakSampler(idle + abort_above) as sampler:
        results = enricher.enrich(items)
    seconds = time.perf_counter() - started
    reasons = sorted({r.reason for r in results if isinstance(r, Failed)})
    del results
    gc.collect()
    return {
        "photos": len(items),
        "peak_above_idle": sampler.peak - idle,
        "peak_above_start": sampler.peak - before,
        "after_above_idle": rss() - idle,
        "peak_source": "kernel VmHWM" if sampler.kernel is not None else "sampled",
        "failed_reasons": reasons,
        "seconds": seconds,
    }


def goals(report: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each goal and whether it was met."""
    checks: list[tuple[str, bool]] = []
    for index, run in enumerate(report["flat"], start=1):
        checks += [
            (f"flat batch {index}: peak < idle + 2 GB", run["peak_above_idle"] < PEAK_GOAL),
            (f"flat batch {index}: after < idle + 1 GB", run["after_above_idle"] < AFTER_GOAL),
            (f"flat batch {index}: every photo enriched", not run["failed_reasons"]),
        ]
    strip = report.get("strip")
    if strip is not None:
        checks += [
            ("strip: refused as DEGENERATE_IMAGE", strip["failed_reasons"] == ["DEGENERATE_IMAGE"]),
            ("strip: peak < its start + 256 MB", strip["peak_above_start"] < STRIP_PEAK_GOAL),
        ]
    return checks


def markdown(report: dict[str, Any]) -> str:
    """The table the README quotes."""
    rows = [("flat", i, r) for i, r in enumerate(report["flat"], start=1)]
    if report.get("strip") is not None:
        rows.append(("strip", 1, report["strip"]))
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores; idle "
        f"RSS {report['idle_rss'] / MB:.0f} MB (Enricher loaded, warmed up).",
        "",
        "| case | photos | peak above idle (MB) | after, above idle (MB) | seconds | failed |",
        "|---|---|---|---|---|---|",
    ]
    for name, index, run in rows:
        label = {"flat": f"10000x10000 flat PNG, batch {index}", "strip": "1x100000 PNG strip"}
        lines.append(
            f"| {label[name]} | {run['photos']} | {run['peak_above_idle'] / MB:.0f} "
            f"| {run['after_above_idle'] / MB:.0f} | {run['seconds']:.1f} "
            f"| {', '.join(run['failed_reasons']) or '-'} |"
        )
    lines += ["", *(f"- {'met' if ok else 'MISSED'}: {goal}" for goal, ok in goals(report))]
    return "\n".join(lines) + "\n"


def run(cases: Sequence[str], batches: int, abort_above: int, batch: int = BATCH) -> dict[str, Any]:
    """Load the engine, then measure each case (``batches`` of ``batch`` flat photos)."""
    settings = production_settings()
    repository = ModelRepository.from_settings(settings)
    enricher = Enricher(settings.engine, repository)
    report: dict[str, Any] = {"machine": machine(), "flat": [], "strip": None}
    try:
        with tempfile.TemporaryDirectory(prefix="darkroom-memory-") as folder:
            photos = write_pngs(Path(folder))
        gc.collect()
        report["idle_rss"] = idle = rss()
        case = functools.partial(measure_case, enricher, idle=idle, abort_above=abort_above)
        if "flat" in cases:
            flat = [PhotoInput(f"flat-{i}", photos["flat"]) for i in range(batch)]
            for index in range(batches):
                print(f"flat: batch {index + 1} of {batch} x 10000x10000 PNG", flush=True)
                report["flat"].append(case(flat))
        if "strip" in cases:
            print("strip: 1 x 1x100000 PNG", flush=True)
            report["strip"] = case([PhotoInput("strip", photos["strip"])])
    finally:
        enricher.close()
    report["settings"] = settings.engine.model_dump(mode="json")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, write JSON and markdown, exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=("flat", "strip"), default=["flat", "strip"])
    parser.add_argument("--batches", type=int, default=2, help="flat batches, one after another")
    parser.add_argument("--batch", type=int, default=BATCH, help="flat photos in each batch")
    parser.add_argument(
        "--abort-above-gb", type=float, default=8.0, help="watchdog: RSS above idle that ends it"
    )
    output_args(parser, smoke="1 batch of 2 flat photos, and the strip")
    args = parser.parse_args(argv)
    if args.smoke:  # both cases through the engine once; the goals mean nothing at this size
        args.batches, args.batch = 1, 2
    out = out_of(args)
    configure_logging("WARNING", "console")
    report = run(args.cases, args.batches, int(args.abort_above_gb * GB), args.batch)
    write_results("memory", report, markdown(report), out)
    if out is not None:
        print(f"wrote {out}/memory.json, memory.md")
    sys.exit(0 if args.smoke or all(ok for _, ok in goals(report)) else 1)


if __name__ == "__main__":
    main()
