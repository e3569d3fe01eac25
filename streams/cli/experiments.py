"""`darkroom experiments report`: each variant against production, from photos.shadow."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from streams.cli.common import console, err_console, state
from streams.experiments.drift import drift_by_window, read_enriched
from streams.experiments.report import Experiments, VariantReport, as_json, read_shadow
from streams.models.repository import ModelRepository

app = typer.Typer(help="Model experiments: shadow and canary variants.", no_args_is_help=True)

VERDICT_STYLE = {"promote": "bold green", "reject": "bold red", "undecided": "yellow"}


def load_experiments(ctx: typer.Context) -> Experiments:
    """photos.shadow folded, with a count on stderr while it reads."""
    app_state = state(ctx)
    with err_console.status(f"reading {app_state.settings.topics.shadow}") as status:
        return read_shadow(
            app_state.settings,
            app_state.codec,
            lambda n: (
                status.update(f"reading {app_state.settings.topics.shadow}: {n} records")
                if n % 500 == 0
                else None
            ),
        )


@app.command()
def report(
    ctx: typer.Context,
    variant: str | None = typer.Option(None, help="Only this variant (model name)."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per variant version."),
) -> None:
    """Per variant: photos, latency against production, agreement with 95% intervals, verdict."""
    settings = state(ctx).settings
    experiments = load_experiments(ctx)
    reports = [
        r
        for r in experiments.reports(ModelRepository.from_settings(settings))
        if variant in (None, r.variant)
    ]
    if json_lines:
        for item in reports:
            console.print_json(json.dumps(as_json(asdict(item))), indent=None)
        return
    if not reports:
        console.print(f"no shadow results in {settings.topics.shadow}", highlight=False)
    for item in reports:
        render(item)
    if experiments.unreadable:
        err_console.print(f"{experiments.unreadable} record(s) were not ShadowResults; left out")


def render(item: VariantReport) -> None:
    """One variant version as two tables and a verdict line."""
    modes = ", ".join(f"{mode} {n}" for mode, n in sorted(item.modes.items()))
    console.print(
        f"\n[bold]{item.key}[/] against {item.production} ({item.task}): {item.photos} photos "
        f"({modes}), failed on {item.failed}",
        highlight=False,
    )
    latency = Table("inference per photo", "p50 ms", "p99 ms", "mean batch")
    for side in ("production", "variant"):
        p50, p99 = item.latency_ms[side]
        latency.add_row(side, f"{p50:.2f}", f"{p99:.2f}", f"{item.mean_batch[side]:.1f}")
    console.print(latency)
    judged = {c.figure: c for c in item.criteria}
    figures = Table("figure", "mean", "95% interval", "photos", "criterion", "judgement")
    for figure, estimate in item.figures.items():
        criterion = judged.get(figure)
        figures.add_row(
            figure,
            f"{estimate.value:.4f}",
            f"[{estimate.low:.4f}, {estimate.high:.4f}]",
            str(estimate.n),
            str(criterion.criterion) if criterion else "",
            criterion.judgement if criterion else "",
        )
    for figure, criterion in judged.items():
        if figure not in item.figures:
            figures.add_row(figure, "", "", "0", str(criterion.criterion), criterion.judgement)
    console.print(figures)
    style = VERDICT_STYLE.get(item.verdict, "")
    console.print(f"verdict: [{style}]{item.verdict}[/]" if style else f"verdict: {item.verdict}")


@app.command()
def drift(
    ctx: typer.Context,
    window: int | None = typer.Option(
        None, min=20, help="Photos per window (default: DARKROOM_ENGINE_DRIFT_WINDOW)."
    ),
    significance: float | None = typer.Option(
        None, help="Default: DARKROOM_ENGINE_DRIFT_SIGNIFICANCE."
    ),
    json_lines: bool = typer.Option(False, "--json", help="One JSON object per model and window."),
) -> None:
    """Each production model's drift from its first window, window by window, over
    photos.enriched (the figures the worker exports as darkroom_model_drift*)."""
    app_state = state(ctx)
    engine = app_state.settings.engine
    size = window or engine.drift_window
    with err_console.status(f"reading {app_state.settings.topics.enriched}"):
        records = read_enriched(app_state.settings, app_state.codec)
        rows = drift_by_window(records, size, significance or engine.drift_significance)
    if json_lines:
        for row in rows:
            console.print_json(json.dumps({**asdict(row), "drifted": row.drifted}), indent=None)
        return
    if not rows:
        console.print(
            f"fewer than {2 * size} photos of any model in {app_state.settings.topics.enriched}: "
            "no window to compare with the reference yet",
            highlight=False,
        )
        return
    table = Table(title=f"drift from each model's first {size} photos (ratio >= 1: drifted)")
    for column in ("model", "window", "photos", "signal", "distance", "ratio", ""):
        table.add_column(column)
    for row in rows:
        mark = "[bold red]drifted[/]" if row.drifted else "[green]steady[/]"
        table.add_row(
            row.model,
            str(row.window),
            str(row.photos),
            row.signal,
            f"{row.distance:.3f}",
            f"{row.ratio:.2f}",
            mark,
        )
    console.print(table)
