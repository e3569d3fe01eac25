"""`darkroom experiments report`: each variant against production, from photos.shadow."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from streams.cli.common import console, err_console, state
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
