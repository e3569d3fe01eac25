"""Rendering of the end-to-end benchmark: the README table (markdown) and the plots (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.stats import percentile

_GUARANTEES = ("at_least_once", "exactly_once")


def markdown(report: dict[str, Any]) -> str:
    """The README table, the goals and where the time goes."""
    best = report["darkroom_default"]
    naive, ceiling = report["naive"], report["ceiling"]
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores "
        f"(provider cpu), {report['photos']} photos per run (1/4 12 MP, 1/4 3 MP, 1/2 "
        f"0.3 MP JPEGs), the model set models/ serves; {report['repeats']} runs of the "
        "default point, 1 of each other row; median (range).",
        "",
        "| variant | photos/s | p50 / p95 / p99 latency (s) |",
        "|---|---|---|",
    ]
    kafka = report.get("kafka") or {}
    fp32 = report.get("fp32")
    rows = [("naive worker (1 at a time, full decode, batch 1, reference OCR)", naive)]
    rows += [(f"Darkroom batch {p['batch']}, wait {p['wait_s']} s", p) for p in report["darkroom"]]
    if fp32:
        rows.append((f"Darkroom batch 16, wait 0.2 s, fp32 ({', '.join(fp32['models'])})", fp32))
    rows += [
        (f"Darkroom batch 16, wait 0.2 s, Apache Kafka {kafka['version']}, {g}", kafka[g])
        for g in _GUARANTEES
        if g in kafka
    ]
    for label, row in rows:
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
        *_goals(report),
        "",
    ]
    if kafka.get("skipped"):
        lines.append(f"Apache Kafka rows skipped: {kafka['skipped']}")
    lines += _where_time_goes(best)
    for guarantee, row in [("tansu", best)] + [(g, kafka[g]) for g in kafka if g in _GUARANTEES]:
        stages = row["metrics"].get("stage_mean_s", {})
        if stages.get("batch"):
            lines.append(
                f"Waiting for the broker ({guarantee}): the send stage is "
                f"{stages.get('send', 0.0) / stages['batch']:.1%} of a batch's time."
            )
    sizes = _batch_sizes(best["metrics"].get("batch_size_cumulative", {}))
    if sizes:
        lines.append(
            "Batch sizes taken by the agent (worker metrics, all runs of that point): "
            + ", ".join(f"{label}: {count}" for label, count in sizes)
            + "."
        )
    return "\n".join(lines) + "\n"


def _goals(report: dict[str, Any]) -> list[str]:
    """The three goals of the benchmark, each with its measured figure and whether it is met."""
    best, naive, ceiling = report["darkroom_default"], report["naive"], report["ceiling"]
    dark = best["photos_per_s"]["median"]
    engine = ceiling["engine_photos_per_s"]["median"]
    speedup = dark / naive["photos_per_s"]["median"]
    lines = [
        "| goal | measured | met |",
        "|---|---|---|",
        f"| Darkroom >= 90% of the engine ceiling | {dark / engine:.0%} | "
        f"{_yes(dark >= 0.9 * engine)} |",
        f"| Darkroom >= 5x the naive worker | {speedup:.1f}x | {_yes(speedup >= 5)} |",
    ]
    steady = best.get("steady")
    if steady:
        p99 = percentile(steady["latencies_s"], 99)
        bound = report["latency_bound_s"]
        one = {int(q): v for q, v in ceiling["one_photo_inference_s"].items()}
        lines.append(
            f"| p99 latency at half the maximum rate ({steady['offered_photos_per_s']:.2f} "
            f"photos/s) <= max wait + 2 x one photo's inference p99 ({best['wait_s']} + 2 x "
            f"{one[99]:.2f} = {bound:.2f} s) | "
            f"{p99:.2f} s | {_yes(p99 <= bound)} |"
        )
    return lines


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


# the stages of the pipeline thread that computes a batch (streams/pipeline/batch.py finish)
_COMPUTE = ("skip_again", "enrich", "duplicates", "build", "encode_output")
_START = ("decode_event", "skip", "fetch_blob")


def _where_time_goes(row: dict[str, Any]) -> list[str]:
    """Per-stage seconds from the worker's metrics, and the busiest thread's share of the run."""
    metrics = row["metrics"]
    sums, spans = metrics.get("stage_sum_s", {}), row.get("spans_s", [])
    if not sums or not spans:
        return []
    wall = sum(spans)
    compute = sum(sums.get(stage, 0.0) for stage in _COMPUTE)
    start = sum(sums.get(stage, 0.0) for stage in _START)
    return [
        "Where the time goes (worker metrics, seconds summed over the default point's runs, "
        f"{wall:.0f} s of wall time): "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(sums.items()) if k != "batch")
        + f". The computing thread (inference and outputs) was busy {compute / wall:.0%} of "
        f"the time and the starting thread (events, skip, fetch) {start / wall:.0%}; photos "
        "decode in the engine's threads meanwhile, overlapped with inference.",
        "",
    ]


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
