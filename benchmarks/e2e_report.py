"""Rendering of the end-to-end benchmark: the README table (markdown) and the plots (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.stats import percentile

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not with the tables
    from matplotlib.axes import Axes

_GUARANTEES = ("at_least_once", "exactly_once")


def markdown(report: dict[str, Any]) -> str:
    """The README table, the goals and where the time goes."""
    best = report["darkroom_default"]
    naive, ceiling = report["naive"], report["ceiling"]
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores "
        f"(provider cpu), {report['photos']} photos per run (1/4 12 MP, 1/4 3 MP, 1/2 "
        f"0.3 MP JPEGs), the model set models/ serves; {_runs(report['repeats'])} of the "
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
    engine = ceiling["engine_photos_per_s"]
    inference = ceiling["inference_only_photos_per_s"]["median"]
    lines += [
        f"| engine alone, photos in memory (ceiling; before the default point and after each "
        f"of its runs) | {engine['median']:.2f} ({engine['low']:.2f}-{engine['high']:.2f}) | |",
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


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


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
        *_cpu_shares(row),
    ]


def _cpu_shares(row: dict[str, Any]) -> list[str]:
    """Who used the machine's CPUs during the default point's runs (median of its runs)."""
    share = row.get("cpu_share")
    if not share:
        return []
    return [
        "The machine's CPUs during those runs (first upload to last outcome, median of runs): "
        f"the worker {share['worker']:.0%}, the embedded broker {share['broker']:.0%}, the "
        f"benchmark publishing and waiting {share['publisher']:.0%}; the engine ceiling has "
        "the machine to itself.",
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


# one colour per contender, the same in every panel
_NAIVE, _DARKROOM, _CEILING = "tab:red", "tab:blue", "tab:green"


def plot(report: dict[str, Any], path: Path) -> None:
    """The picture a reader needs at a glance: naive, Darkroom and the ceiling side by side; the
    latency CDF of each scenario; throughput against max batch size and against max wait (or,
    without a sweep, what the panel would show)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((bars, cdf), (by_batch, by_wait)) = plt.subplots(2, 2, figsize=(13, 9))
    _side_by_side(bars, report)
    _latency_cdf(cdf, report)
    default = report["darkroom_default"]
    _against(by_batch, report, "batch", "wait_s", "max batch size", "a full run adds batch 1 and 4")
    _against(by_wait, report, "wait_s", "batch", "max wait (s)", "a full run adds 0.05 and 0.5 s")
    by_batch.set_title(f"Throughput vs max batch size (max wait {default['wait_s']:g} s)")
    by_wait.set_title(f"Throughput vs max wait (max batch size {default['batch']})")
    machine = report["machine"]
    fig.suptitle(
        f"Darkroom end to end: {report['photos']} photos a run, {machine['cpus']} CPU cores, "
        f"{machine['date']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _side_by_side(axis: Axes, report: dict[str, Any]) -> None:
    """Photos/s of the naive worker, Darkroom's default point (range of its runs) and the engine
    alone, each bar labelled; Darkroom's against the two throughput goals."""
    default = report["darkroom_default"]
    naive = report["naive"]["photos_per_s"]["median"]
    engine = report["ceiling"]["engine_photos_per_s"]["median"]
    rate = default["photos_per_s"]
    labels = [
        "naive worker\n(1 at a time)",
        f"Darkroom\n(batch {default['batch']}, wait {default['wait_s']:g} s)",
        "engine alone\n(the ceiling)",
    ]
    values = [naive, rate["median"], engine]
    axis.bar(
        labels,
        values,
        color=[_NAIVE, _DARKROOM, _CEILING],
        yerr=[[0.0, rate["median"] - rate["low"], 0.0], [0.0, rate["high"] - rate["median"], 0.0]],
        capsize=4,
    )
    notes = [
        "",
        f"{rate['median'] / naive:.1f}x naive (goal 5x)\n{rate['median'] / engine:.0%} of the "
        "ceiling (goal 90%)",
        "",
    ]
    tops = [naive, rate["high"], engine]  # above Darkroom's range
    for x, (value, top, note) in enumerate(zip(values, tops, notes, strict=True)):
        axis.annotate(
            f"{value:.2f}" + (f"\n{note}" if note else ""),
            (x, top),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    axis.set_ylim(0, max(tops) * 1.35)
    axis.set(
        ylabel="photos/s",
        title="Throughput side by side (Darkroom: "
        + ("1 run)" if report["repeats"] == 1 else f"median, range of {_runs(report['repeats'])})"),
    )


def _latency_cdf(axis: Axes, report: dict[str, Any]) -> None:
    """Upload -> enriched seconds of every photo, per scenario, with the half-rate p99 goal."""
    default = report["darkroom_default"]
    kafka = report.get("kafka") or {}
    scenarios: list[tuple[str, list[float], str, str]] = [
        ("naive worker, max rate", report["naive"]["latencies_s"], _NAIVE, "-"),
        ("Darkroom, max rate", default["latencies_s"], _DARKROOM, "-"),
        (
            "Darkroom, half its max rate",
            (default.get("steady") or {}).get("latencies_s", []),
            "tab:cyan",
            "-",
        ),
        *(
            (f"Darkroom on Apache Kafka, {g.replace('_', ' ')}", kafka[g]["latencies_s"], c, "--")
            for g, c in zip(_GUARANTEES, ("tab:purple", "tab:gray"), strict=True)
            if g in kafka
        ),
    ]
    for label, latencies, colour, style in scenarios:
        if latencies:
            ordered = sorted(latencies)
            axis.plot(
                ordered,
                [(i + 1) / len(ordered) for i in range(len(ordered))],
                color=colour,
                ls=style,
                label=f"{label} (p99 {percentile(ordered, 99):.1f} s)",
            )
    if default.get("steady"):
        axis.axvline(
            report["latency_bound_s"],
            color="black",
            ls=":",
            lw=1,
            label=f"half-rate p99 goal ({report['latency_bound_s']:.2f} s)",
        )
    axis.set(
        xscale="log",
        xlabel="upload -> enriched (s)",
        ylabel="share of photos",
        title="Latency CDF per scenario (max rate: all photos published at once)",
    )
    axis.grid(True, which="both", alpha=0.3)
    # below the panel: inside, it hid a curve whichever corner it took
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)


def _against(
    axis: Axes, report: dict[str, Any], key: str, fixed_key: str, label: str, sweep: str
) -> None:
    """Darkroom's photos/s against ``key`` with ``fixed_key`` at the default point's value;
    the naive worker and the ceiling as lines; a note when the run had no sweep."""
    fixed = report["darkroom_default"][fixed_key]
    rows = sorted((p for p in report["darkroom"] if p[fixed_key] == fixed), key=lambda p: p[key])
    med = [p["photos_per_s"]["median"] for p in rows]
    xs = [p[key] for p in rows]
    axis.errorbar(
        xs,
        med,
        yerr=[
            [m - p["photos_per_s"]["low"] for m, p in zip(med, rows, strict=True)],
            [p["photos_per_s"]["high"] - m for m, p in zip(med, rows, strict=True)],
        ],
        marker="o",
        capsize=3,
        color=_DARKROOM,
        label="Darkroom",
    )
    naive = report["naive"]["photos_per_s"]["median"]
    engine = report["ceiling"]["engine_photos_per_s"]["median"]
    axis.axhline(naive, color=_NAIVE, ls="--", label="naive worker")
    axis.axhline(engine, color=_CEILING, ls=":", label="engine ceiling")
    axis.set_xscale("log")
    axis.set_xticks(xs, [f"{x:g}" for x in xs])
    axis.minorticks_off()
    if len(rows) < 2:
        axis.set_xlim(xs[0] / 5, xs[0] * 5)
        axis.text(
            0.5,
            0.5,
            f"no sweep in this run: the default point only\n({sweep})",
            transform=axis.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="dimgray",
        )
    axis.set_ylim(0, max([engine, naive, *(p["photos_per_s"]["high"] for p in rows)]) * 1.15)
    axis.set(xlabel=label, ylabel="photos/s")
    axis.legend(fontsize=8, loc="lower right")
