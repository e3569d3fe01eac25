"""`darkroom models list|install|build|verify|promote|train-gate`: the model repository."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.cli.common import ExitCode, console, err_console, fail, state
from streams.cli.experiments import load_experiments
from streams.config import Settings
from streams.engine.build import build as build_model
from streams.engine.verify import verify_model
from streams.errors import OperationError
from streams.experiments.promote import promote as promote_variant
from streams.experiments.text_gate import describe, examples
from streams.inference.text_gate import train
from streams.models.build import BuildError
from streams.models.install import install_commands, run_install
from streams.models.manifest import ModelManifest
from streams.models.repository import ModelRepository
from streams.models.sources import MissingSourceError, SourceMismatchError
from streams.tail import scan_many


class PromotionRefusedError(OperationError):
    """A variant whose measured verdict is not "promote"."""


app = typer.Typer(
    help="The model repository: list, build (offline) and verify models.", no_args_is_help=True
)


def open_repository(settings: Settings) -> ModelRepository:
    """The configured repository (a ManifestError is a usage error, through the CLI's handler)."""
    return ModelRepository.from_settings(settings)


def _select(repository: ModelRepository, names: list[str] | None) -> list[ModelManifest]:
    return [repository.get(n) for n in names] if names else repository.manifests()


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Every model: task, version, licence, source and whether it is built."""
    repository = open_repository(state(ctx).settings)
    table = Table(title=f"models in {repository.root} (built into {repository.cache})")
    for column in ("name", "task", "version", "role", "built", "source", "license"):
        table.add_column(column, overflow="fold")
    for manifest in repository.manifests():
        source = manifest.source
        origin = f"{source.package}=={source.package_version}" if source.package else "(folder)"
        built = "yes" if repository.artifacts(manifest).build_info() else "[red]no[/]"
        table.add_row(
            manifest.name,
            manifest.task.value,
            manifest.version,
            _role(manifest),
            built,
            f"{origin}: {source.file}",
            manifest.license,
        )
    for name, why in repository.disabled.items():  # an experiment's broken manifest
        table.add_row(name, "", "", f"[red]disabled[/]: {why}", "", "", "")
    console.print(table)


def _role(manifest: ModelManifest) -> str:
    """production, or e.g. 'shadow 100% of mobilenet_v2'."""
    rollout = manifest.rollout
    if rollout is None:
        return "production"
    share = "" if rollout.mode == "retired" else f" {rollout.percent:g}%"
    return f"{rollout.mode}{share} of {manifest.variant_of}"


@app.command()
def install(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands only."),
) -> None:
    """Install the packages the models' weights come from and the demo's sample archive, with
    pip into this Python (what `darkroom models build` and `darkroom demo` read)."""
    commands = install_commands(state(ctx).settings.paths.models)
    for command in commands:
        console.print(" ".join(command), highlight=False, soft_wrap=True)
    if not dry_run:
        run_install(commands)
        console.print("installed; next: darkroom models build", highlight=False)


@app.command()
def promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The variant to make production."),
    force: bool = typer.Option(
        False, "--force", help="Promote whatever `experiments report` says."
    ),
) -> None:
    """Make a variant production once its shadow or canary verdict is "promote"; the old model
    is kept, retired, for rollback (promote it back). Prints the backfill to run."""
    app_state = state(ctx)
    settings = app_state.settings
    repository = open_repository(settings)
    manifest = repository.get(name)
    if manifest.rollout is not None and manifest.rollout.mode != "retired" and not force:
        require_verdict(ctx, repository, manifest)
    promotion = promote_variant(repository, name)
    old = promotion.retired
    what = "rolled back to" if promotion.rollback else "promoted"
    console.print(
        f"{what} {manifest.key}: it is production for {manifest.task} now; {old.key} is "
        f"retired (roll back: `darkroom models promote {old.name}`)",
        highlight=False,
    )
    for moved in promotion.moved:
        console.print(f"{moved} is a variant of {name} now", highlight=False)
    for path in promotion.files:
        console.print(f"  edited {path}", highlight=False)
    if settings.engine.models.strip().lower() != "all":
        err_console.print(
            f"[yellow]note:[/] DARKROOM_ENGINE_MODELS={settings.engine.models} names models "
            f"explicitly: put {name} there in place of {old.name}",
            highlight=False,
        )
    console.print(
        "next: restart the workers (they read the manifests at start), then backfill the photos "
        "enriched before:\n"
        f"  darkroom replay --topic {settings.topics.uploaded} --reprocess --stale-models",
        highlight=False,
    )


def require_verdict(
    ctx: typer.Context, repository: ModelRepository, manifest: ModelManifest
) -> None:
    """PromotionRefusedError unless photos.shadow's verdict on this version is "promote"."""
    found = [r for r in load_experiments(ctx).reports(repository) if r.key == manifest.key]
    if not found:
        raise PromotionRefusedError(
            f"no shadow results for {manifest.key} yet: run it in shadow or canary first "
            "(--force promotes without them)"
        )
    verdict = found[0].verdict
    if verdict != "promote":
        failing = [
            f"{c.figure} {c.estimate} {c.criterion}: {c.judgement}"
            for c in found[0].criteria
            if c.judgement != "pass"
        ]
        raise PromotionRefusedError(
            f"{manifest.key}'s verdict is {verdict} ({'; '.join(failing) or 'no criteria'}); "
            "see `darkroom experiments report` (--force promotes anyway)"
        )


@app.command()
def build(
    ctx: typer.Context,
    names: list[str] | None = typer.Argument(None, help="Models to build (default: all)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if an identical build exists."),
) -> None:
    """Convert every model's source (an installed package) into ONNX in the cache, offline."""
    repository = open_repository(state(ctx).settings)
    manifests = _select(repository, names)
    failures = 0
    progress = Progress(
        TextColumn("[bold]building {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )
    with progress:
        task = progress.add_task("models", total=len(manifests))
        for manifest in manifests:
            progress.update(task, description=manifest.name)
            try:
                result = build_model(repository, manifest, force=force)
            except (MissingSourceError, SourceMismatchError, BuildError) as exc:
                failures += 1
                progress.console.print(
                    f"[red]✗ {manifest.name}:[/] {escape(str(exc))}", highlight=False
                )
            else:
                what = f"built in {result.seconds:.1f} s" if result.built else "up to date"
                progress.console.print(
                    f"[green]✓[/] {manifest.key}: {what} ({result.path})", highlight=False
                )
            progress.advance(task)
    if failures:
        fail(f"{failures} model(s) could not be built", ExitCode.FAILED)


@app.command()
def verify(
    ctx: typer.Context,
    names: list[str] | None = typer.Argument(None, help="Models to verify (default: all)."),
) -> None:
    """Load each model and run its golden checks on real sample photos."""
    settings = state(ctx).settings
    repository = open_repository(settings)
    failed = 0
    for manifest in _select(repository, names):
        try:
            result = verify_model(manifest, repository, settings.engine)
        except Exception as exc:  # a model that cannot even load is a failed verification
            failed += 1
            console.print(f"[red]✗ {manifest.key}:[/] {escape(str(exc))}", highlight=False)
            continue
        failed += not result.passed
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        console.print(f"{mark} {manifest.key} ({result.seconds:.1f} s)", highlight=False)
        for check in result.checks:
            tick = "[green]ok[/]" if check.passed else "[red]FAILED[/]"
            console.print(f"    {tick} {check.description}: {escape(check.seen)}", highlight=False)
    if failed:
        fail(f"{failed} model(s) failed verification", ExitCode.FAILED)


@app.command("train-gate")
def train_gate(
    ctx: typer.Context,
    out: Path = typer.Option(
        ..., "--out", help="The gate file to write (e.g. models/ppocr_det_gated/text_gate.json)."
    ),
    topic: str | None = typer.Option(None, "--topic", help="Default: the enriched topic."),
    detector: str = typer.Option(
        "ppocr_det", "--detector", help="The full detector whose reads are the labels."
    ),
    line_recall: float = typer.Option(
        0.975, "--line-recall", min=0.5, max=1.0, help="Share of text lines the gate must keep."
    ),
    timeout_s: float = typer.Option(300.0, "--timeout", help="Seconds to read the topic."),
) -> None:
    """Learn a text gate from the enriched topic: each photo's embedding, and whether the full
    detector read text in it. Ship the file in a detector's model folder (``text_gate`` in its
    params) and judge it in shadow like any variant."""
    app_state = state(ctx)
    settings = app_state.settings
    name = topic or settings.topics.enriched
    with console.status(f"reading {name} to its end"):
        found = examples(scan_many(settings, app_state.codec, [name], timeout_s), detector)
    embeddings, lines = found.arrays()
    with console.status(f"training on {len(lines)} photos"):
        gate = train(embeddings, lines, line_recall=line_recall)
    out.parent.mkdir(parents=True, exist_ok=True)
    gate.save(out)
    console.print(f"wrote {out}: {describe(dict(gate.trained))}", highlight=False)
    for why, count in sorted(found.skipped.items()):
        console.print(f"  left out: {count} ({why})", highlight=False)
