"""`darkroom models list|build|verify`: the model repository."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.cli.common import ExitCode, console, err_console, fail, state
from streams.config import Settings
from streams.engine.verify import verify_model
from streams.models.build import BuildError, build_model
from streams.models.manifest import ModelManifest
from streams.models.repository import ModelRepository
from streams.models.sources import MissingSourceError, SourceMismatchError

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
    for column in ("name", "task", "version", "built", "source", "license"):
        table.add_column(column, overflow="fold")
    for manifest in repository.manifests():
        source = manifest.source
        origin = f"{source.package}=={source.package_version}" if source.package else "(folder)"
        built = "yes" if repository.artifacts(manifest).build_info() else "[red]no[/]"
        table.add_row(
            manifest.name,
            manifest.task.value,
            manifest.version,
            built,
            f"{origin}: {source.file}",
            manifest.license,
        )
    console.print(table)


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
                progress.console.print(f"[red]✗ {manifest.name}:[/] {exc}", highlight=False)
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
            console.print(f"[red]✗ {manifest.key}:[/] {exc}", highlight=False)
            continue
        failed += not result.passed
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        console.print(f"{mark} {manifest.key} ({result.seconds:.1f} s)", highlight=False)
        for check in result.checks:
            tick = "[green]ok[/]" if check.passed else "[red]FAILED[/]"
            console.print(f"    {tick} {check.description}: {check.seen}", highlight=False)
    if failed:
        fail(f"{failed} model(s) failed verification", ExitCode.FAILED)
