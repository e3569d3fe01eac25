"""Rendering of the end-to-end benchmark: the README table (markdown) and the plots (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.stats import percentile

_GUARANTEES = ("at_least_once", "exactly_once")


def markdown(report: dict[str, Any]) -> str:
    """The README table."""
    points = report["darkroom"]
    best = report["darkroom_default"]
    naive, ceiling = report["naive"], report["ceiling"]
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores "
        f"(provider cpu), {report['photos']} photos per run (1/4 12 MP, 1/4 3 MP, 1/2 "
        f"0.3 MP JPEGs), {report['repeats']} runs per point "
        f"({len(report['naive']['photos_per_s']['runs'])} for the naive worker); "
        "median (range).",
        "",
        "| variant | photos/s | p50 / p95 / p99 latency (s) |",
        "|---|---|---|",
    ]
    kafka = report.get("kafka") or {}
    on_kafka = [
        (f"Darkroom batch 16, wait 0.2 s, Apache Kafka {kafka['version']}, {g}", kafka[g])
        for g in ("at_least_once", "exactly_once")
        if g in kafka
    ]
    for label, row in (
        [("naive worker (1 at a time, full decode, batch 1, reference OCR)", naive)]
        + [(f"Darkroom batch {p['batch']}, wait {p['wait_s']} s", p) for p in points]
        + on_kafka
    ):
        rate = row["photos_per_s"]
        lat = {int(q): v for q, v in row["latency_s"].items()}  # JSON turns the keys to strings
        lines.append(
            f"| {label} | {rate['median']:.2f} ({rate['low']:.2f}-{rate['high']:.2f})"
            f" | {lat[50]:.2f} / {lat[95]:.2f} / {lat[99]:.2f} |"
        )
    engine = ceiling["engine_photos_per_s"]["median"]
    inference = ceiling["inference_only_photos_per_s"]["median"]
    lines += [
        f"| engine alone, photos in memory (ceiling) | {engine:.2f} | |",
        f"| inference alone, decoded tensors | {inference:.2f} | |",
        "",
    ]
    dark = best["photos_per_s"]["median"]
    lines.append(
        f"Darkroom (batch {best['batch']}, wait {best['wait_s']} s) / naive: "
        f"**{dark / naive['photos_per_s']['median']:.1f}x**; Darkroom / engine "
        f"ceiling: **{dark / engine:.0%}**; Darkroom / inference alone: "
        f"**{dark / inference:.0%}**."
    )
    if kafka.get("skipped"):
        lines.append(f"Apache Kafka rows skipped: {kafka['skipped']}")
    for guarantee, row in [("tansu", best)] + [(g, kafka[g]) for g in kafka if g in _GUARANTEES]:
        stages = row["metrics"].get("stage_mean_s", {})
        if stages.get("batch"):
            lines.append(
                f"Waiting for the broker ({guarantee}): the send stage is "
                f"{stages.get('send', 0.0) / stages['batch']:.1%} of a batch's time."
            )
    steady = best.get("steady")
    if steady:
        lat = steady["latencies_s"]
        bound = report["latency_bound_s"]
        lines.append(
            f"At a steady {steady['offered_photos_per_s']:.2f} photos/s (half the "
            f"measured maximum): latency p50 {percentile(lat, 50):.2f} s, p95 "
            f"{percentile(lat, 95):.2f} s, p99 {percentile(lat, 99):.2f} s; the goal "
            f"(max wait + 2 x one batch's inference) is {bound:.2f} s."
        )
    sizes = _batch_sizes(best["metrics"].get("batch_size_cumulative", {}))
    if sizes:
        lines.append(
            "Batch sizes taken by the agent (worker metrics, all runs of that point): "
            + ", ".join(f"{label}: {count}" for label, count in sizes)
            + "."
        )
    stages = best["metrics"].get("stage_mean_s", {})
    if stages:
        lines.append(
            "Worker stage means per batch (s): "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(stages.items()))
            + "."
        )
    return "\n".join(lines) + "\n"


def _batch_sizes(cumulative: dict[str, float]) -> list[tuple[str, int]]:
    """Prometheus cumulative buckets -> [("5-8", n), ("9-16", n), ...], empty ranges left out."""
    bounds = sorted((float(le), count) for le, count in cumulative.items() if le != "+Inf")
    out, previous_bound, previous_count = [], 0.0, 0.0
    for bound, count in bounds:
        if count > previous_count:
            low = int(previous_bound) + 1
            label = f"{low}-{int(bound)}" if low < bound else f"{int(bound)}"
            out.append((label, int(count - previous_count)))
        previous_bound, previous_count = bound, count
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    """Throughput vs batch size and vs wait; latency CDFs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_batch, by_wait, cdf) = plt.subplots(1, 3, figsize=(15, 4.5))
    default_wait = report["darkroom_default"]["wait_s"]
    default_batch = report["darkroom_default"]["batch"]
    for axis, key, fixed_key, fixed, label in (
        (by_batch, "batch", "wait_s", default_wait, "max batch size"),
        (by_wait, "wait_s", "batch", default_batch, "max wait (s)"),
    ):
        rows = sorted(
            (p for p in report["darkroom"] if p[fixed_key] == fixed), key=lambda p: p[key]
        )
        med = [p["photos_per_s"]["median"] for p in rows]
        axis.errorbar(
            [p[key] for p in rows],
            med,
            marker="o",
            capsize=3,
            label="Darkroom",
            yerr=[
                [m - p["photos_per_s"]["low"] for m, p in zip(med, rows, strict=True)],
                [p["photos_per_s"]["high"] - m for m, p in zip(med, rows, strict=True)],
            ],
        )
        axis.axhline(
            report["naive"]["photos_per_s"]["median"], color="red", ls="--", label="naive worker"
        )
        axis.axhline(
            report["ceiling"]["engine_photos_per_s"]["median"],
            color="green",
            ls=":",
            label="engine ceiling",
        )
        axis.set(xlabel=label, ylabel="photos/s", title=f"Throughput vs {label}")
        axis.legend(fontsize=8)
    for label, latencies in (
        ("naive, max rate", report["naive"]["latencies_s"]),
        ("Darkroom, max rate", report["darkroom_default"]["latencies_s"]),
        (
            "Darkroom, half rate",
            (report["darkroom_default"].get("steady") or {}).get("latencies_s", []),
        ),
    ):
        if latencies:
            ordered = sorted(latencies)
            cdf.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    cdf.set(
        xscale="log", xlabel="upload -> enriched (s)", ylabel="share of photos", title="Latency CDF"
    )
    cdf.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
