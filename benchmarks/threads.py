"""How onnxruntime's threads share this machine with the rest of the engine: photos/s of the
engine alone with its threads spinning or not, and each model's milliseconds a photo inside it.

    .venv/bin/python -m benchmarks.threads            # ~3 min: 96 photos, 3 rounds
    .venv/bin/python -m benchmarks.threads --smoke    # ~30 s: 8 photos, 1 round

The engine runs six sessions one after another, each with its own thread pool, while its
decoding threads fit the next batch's photos. onnxruntime's pool threads busy-wait after each op
by default ("spinning"): fast for one model alone, but here the idle pools spin on the cores the
running session and the decoders need. The variants run round-robin on the same photos (the
e2e benchmark's mix, benchmarks/photoset.py), so a busy moment of the machine falls on every
variant alike; each variant's figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from benchmarks import out_of, output_args, photoset, production_settings, ran_on, write_results
from benchmarks.engine import machine
from streams.config import EngineSettings
from streams.engine import Enricher, Failed, PhotoInput
from streams.logs import configure_logging
from streams.models.repository import ModelRepository

VARIANTS: dict[str, dict[str, Any]] = {
    "threads spin (onnxruntime's default)": {"spin_threads": True},
    "threads wait (Darkroom's default)": {"spin_threads": False},
    "threads wait, one thread a session": {"spin_threads": False, "intra_op_threads": 1},
}
BASELINE, DEFAULT = list(VARIANTS)[:2]


class Timed:
    """An enricher whose runners' seconds are summed by runner (inference and its preparing)."""

    def __init__(self, settings: EngineSettings, repository: ModelRepository) -> None:
        self.enricher = Enricher(settings, repository)
        self.seconds: defaultdict[str, float] = defaultdict(float)
        for runner in self.enricher.runners:
            run = runner.run

            def timed(works: Any, run: Any = run, name: str = runner.name) -> Any:
                started = time.perf_counter()
                try:
                    return run(works)
                finally:
                    self.seconds[name] += time.perf_counter() - started

            runner.run = timed  # type: ignore[method-assign]

    def round(self, batches: list[list[PhotoInput]]) -> float:
        """Seconds to enrich every batch once (decoding overlapped with inference)."""
        started = time.perf_counter()
        for batch in self.enricher.enrich_batches(batches):
            failed = [r for r in batch if isinstance(r, Failed)]
            assert not failed, f"photos failed: {failed}"
        return time.perf_counter() - started


def measure(photos: int, rounds: int, batch: int) -> dict[str, Any]:
    settings = production_settings().engine
    repository = ModelRepository.from_settings(production_settings())
    inputs = [PhotoInput(name, data) for name, data in photoset.mixed_set(photos)]
    batches = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
    engines = {
        name: Timed(settings.model_copy(update=change), repository)
        for name, change in VARIANTS.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():  # warm: the first batches allocate
        engine.round(batches[:1])
        engine.seconds.clear()
    for i in range(rounds):
        for name, engine in engines.items():
            seconds[name].append(engine.round(batches))
            print(f"round {i + 1}/{rounds} {name}: {photos / seconds[name][-1]:.2f} photos/s")
    rows: list[dict[str, Any]] = []
    for name, engine in engines.items():
        median = statistics.median(seconds[name])
        rows.append(
            {
                "variant": name,
                "photos_per_s": photos / median,
                "range": [photos / max(seconds[name]), photos / min(seconds[name])],
                "ms_a_photo": {
                    runner: 1000 * spent / (photos * rounds)
                    for runner, spent in sorted(engine.seconds.items())
                },
            }
        )
        engine.enricher.close()
    by_name: dict[str, float] = {row["variant"]: row["photos_per_s"] for row in rows}
    return {
        "machine": machine(),
        "photos": photos,
        "rounds": rounds,
        "batch": batch,
        "rows": rows,
        "ratio": by_name[DEFAULT] / by_name[BASELINE],
    }


def report(result: dict[str, Any]) -> str:
    runners = list(result["rows"][0]["ms_a_photo"])
    lines = [
        "# onnxruntime's threads in the engine",
        "",
        ran_on("threads", result["machine"])
        + f": the engine alone on {result['photos']} mixed photos, "
        f"batch {result['batch']}, {result['rounds']} rounds of each variant taken in turn "
        "(median, range).",
        "",
        "| variant | photos/s | " + " | ".join(f"{r} ms a photo" for r in runners) + " |",
        "|---|---|" + "---|" * len(runners),
    ]
    for row in result["rows"]:
        low, high = row["range"]
        cells = " | ".join(f"{row['ms_a_photo'][r]:.1f}" for r in runners)
        lines.append(
            f"| {row['variant']} | {row['photos_per_s']:.2f} ({low:.2f}-{high:.2f}) | {cells} |"
        )
    lines += [
        "",
        f"Waiting instead of spinning: **{result['ratio']:.2f}x** the photos/s of spinning.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    output_args(parser, smoke="8 photos, one round")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    photos, rounds = (8, 1) if args.smoke else (args.photos, args.rounds)
    result = measure(photos, rounds, args.batch)
    write_results("threads", result, report(result), out_of(args))


if __name__ == "__main__":
    main()
