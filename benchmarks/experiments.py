"""The shipped shadow experiments run on a stream: every variant in models/ beside production.

    .venv/bin/python -m benchmarks.experiments          # make experiments; ~5 min on 2 cores
    .venv/bin/python -m benchmarks.experiments --smoke  # ~30 s: 6 photos, printed only

A private embedded broker and one Darkroom worker with every production model and every variant
the models/ folder declares (DARKROOM_ENGINE_VARIANTS=all), fed ``--photos`` photos of 16 users
(benchmarks.photoset.experiment_set: real photos, augmented, a third with text pasted in).
Then the same report `darkroom experiments report` prints, from the same photos.shadow records,
written to benchmarks/results/experiments.json and experiments.md (not in --smoke, which
cannot --promote either: a few photos' verdict means nothing).
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks import out_of, output_args, photoset, write_results
from benchmarks.e2e import publish, scenario_settings, wait_outcomes
from benchmarks.engine import machine
from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings, load_settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.engine.variants import wanted
from streams.experiments.promote import promote
from streams.experiments.report import VariantReport, as_json, read_shadow
from streams.kafka.clients import message_count
from streams.kafka.topics import ensure_topics, project_topics
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.worker.supervisor import WorkerProcess

# a smoke run: photos (a third with text), and the longest waits for outcomes and shadow records
SMOKE_PHOTOS, SMOKE_OUTCOMES_S, SMOKE_SHADOW_S = 6, 180.0, 15.0


def markdown(reports: Sequence[VariantReport], photos: int, seconds: float) -> str:
    """One table per variant, as the CLI prints them."""
    lines = [
        f"{photos} photos through one worker with every variant in shadow ({seconds:.0f} s).",
        "",
    ]
    for report in reports:
        lines += [
            f"### {report.key} against {report.production}: **{report.verdict}**",
            "",
            f"{report.photos} photos, failed on {report.failed}. Inference per photo (p50 / p99,"
            f" mean batch): production {_ms(report, 'production')}, variant"
            f" {_ms(report, 'variant')}.",
            "",
            "| figure | mean | 95% interval | criterion | judgement |",
            "| --- | --- | --- | --- | --- |",
        ]
        judged = {c.figure: c for c in report.criteria}
        for figure, estimate in report.figures.items():
            criterion = judged.get(figure)
            lines.append(
                f"| {figure} | {estimate.value:.4f} | [{estimate.low:.4f}, {estimate.high:.4f}] | "
                f"{criterion.criterion if criterion else ''} | "
                f"{criterion.judgement if criterion else ''} |"
            )
        lines.append("")
    return "\n".join(lines)


def _ms(report: VariantReport, side: str) -> str:
    p50, p99 = report.latency_ms[side]
    return f"{p50:.1f} / {p99:.1f} ms (batch {report.mean_batch[side]:.1f})"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Run the worker with every variant, then report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=240)
    parser.add_argument("--models", default="all", help="DARKROOM_ENGINE_MODELS for the worker")
    parser.add_argument("--variants", default="all", help="DARKROOM_ENGINE_VARIANTS")
    parser.add_argument(
        "--promote",
        action="store_true",
        help="promote every variant whose verdict is 'promote' (edits models/; see git diff)",
    )
    output_args(parser, smoke=f"{SMOKE_PHOTOS} photos, a {SMOKE_SHADOW_S:g} s shadow wait")
    args = parser.parse_args(argv)
    if args.smoke and args.promote:
        parser.error("--promote needs a full run: a smoke run's verdicts rest on a few photos")
    configure_logging("WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)
    photos = photoset.experiment_set(SMOKE_PHOTOS if args.smoke else args.photos)
    outcomes_s, shadow_s = (SMOKE_OUTCOMES_S, SMOKE_SHADOW_S) if args.smoke else (1800.0, 60.0)
    with tempfile.TemporaryDirectory(prefix="darkroom-experiments-") as tmp:
        folder = Path(tmp)
        base = private_broker_settings(load_settings(), folder / "broker")
        base = base.model_copy(
            update={
                "blobs": base.blobs.model_copy(update={"root": folder / "blobs"}),
                "engine": base.engine.model_copy(
                    update={"models": args.models, "variants": args.variants}
                ),
            }
        )
        repository = ModelRepository(base.paths.models, base.paths.model_cache)
        reports, sent, seconds = run(base, repository, photos, folder, outcomes_s, shadow_s)
    result = {
        "machine": machine(),
        "photos": sent,
        "seconds": seconds,
        "reports": [as_json(asdict(r)) for r in reports],
    }
    write_results("experiments", result, markdown(reports, sent, seconds) + "\n", out_of(args))
    if args.promote:
        for report in reports:
            if report.verdict == "promote":
                promotion = promote(repository, report.variant)
                print(f"promoted {report.key}; {promotion.retired.key} retired (git diff models/)")


def run(
    base: Settings,
    repository: ModelRepository,
    photos: list[tuple[str, bytes]],
    folder: Path,
    outcomes_s: float,
    shadow_s: float,
) -> tuple[list[VariantReport], int, float]:
    """One worker with the variants on a private broker, fed ``photos``: the reports, photos
    sent and seconds to their outcomes. Waits up to ``outcomes_s`` for the outcomes, then up to
    ``shadow_s`` for every variant's shadow record of each photo."""
    variants = wanted(base.engine, repository)
    broker = EmbeddedBroker(base)
    broker.start()
    try:
        settings = scenario_settings(base, 16, 0.2)
        topics = settings.topics.model_copy(update={"shadow": f"sh.{settings.worker.app_id}"})
        settings = settings.model_copy(update={"topics": topics})
        ensure_topics(settings, project_topics(settings))
        worker = WorkerProcess(settings, folder, "worker")
        try:
            worker.start().wait_ready(300)
            started = time.monotonic()
            sent = publish(settings, photos, folder, "x", users=16)
            wait_outcomes(settings, sent, timeout_s=outcomes_s)
            seconds = time.monotonic() - started
            deadline = time.monotonic() + shadow_s
            while message_count(settings, settings.topics.shadow) < sent * len(variants):
                if time.monotonic() > deadline:
                    break  # the report says how many photos each variant ran on
                time.sleep(0.5)
        finally:
            worker.stop()
        codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
        return read_shadow(settings, codec).reports(repository), sent, seconds
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
