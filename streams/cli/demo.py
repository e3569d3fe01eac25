"""`darkroom demo`: the whole system end to end on a private embedded broker.

Writes the real sample photos (and a few corrupt ones), builds any missing model, starts a broker
and a worker of its own, publishes every photo, waits until each one is enriched or dead-lettered,
prints both as tables, and stops everything. Ctrl-C (or SIGTERM) at any point still stops the
worker and the broker: no process is left behind.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.blobs import BlobStore
from streams.broker import EmbeddedBroker, private_broker_settings
from streams.cli.common import AppState, ExitCode, console, err_console, fail, state
from streams.cli.publish import send_with_progress
from streams.cli.render import leaf_tags
from streams.config import Settings
from streams.contracts.schemas import EventType
from streams.engine.build import build as build_model
from streams.experiments.report import read_shadow
from streams.kafka.clients import message_count
from streams.kafka.topics import ensure_topics, project_topics
from streams.models.repository import ModelRepository
from streams.publish import collect
from streams.review import collect as collect_review
from streams.review import write_page
from streams.samples import write_demo_set
from streams.tail import tail
from streams.worker.supervisor import WorkerProcess

OUTCOME_TIMEOUT_S = 120.0


def demo(
    ctx: typer.Context,
    workdir: Path = typer.Option(Path(".darkroom/demo"), help="Where photos, blobs and logs go."),
) -> None:
    """Run Darkroom end to end on real photos and print what came out."""
    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)  # the broker keeps nothing: neither may we
    settings = _demo_settings(state(ctx).settings, workdir)
    app = AppState(settings)
    console.rule("[bold]Darkroom demo")
    samples = write_demo_set(workdir / "photos")
    console.print(
        f"1. wrote {len(samples)} sample photos (scikit-image's, plus two corrupt "
        f"files) to {workdir / 'photos'}"
    )
    _build_models(settings)
    broker = EmbeddedBroker(settings)
    worker = WorkerProcess(settings, workdir, "worker")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = broker.start()
        ensure_topics(settings, project_topics(settings))
        console.print(f"3. started the embedded broker on {status.bootstrap}")
        with console.status("4. starting a worker (loading models, joining the group)..."):
            health = worker.start().wait_ready()
        console.print(
            f"4. worker ready on partitions {health['partitions']} ({worker.url}, log {worker.log})"
        )
        files, problems = collect([str(workdir / "photos")])
        if problems:
            fail(f"the sample set has unpublishable files: {problems}", ExitCode.FAILED)
        writer = BlobStore.from_settings(settings).writer(None)
        report = send_with_progress(settings, app.codec, files, writer, user=None, inline=False)
        names = {d.photo_id: d.file.path.name for d in report.delivered}
        _wait_for_outcomes(settings, len(report.delivered))
        _show_results(app, names, worker)
        _write_reviews(app, workdir / "review")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    finally:
        worker.stop()
        broker.stop()
        signal.signal(signal.SIGTERM, previous)
        console.print(
            f"worker and broker stopped; the demo took {time.monotonic() - started:.1f} s"
        )


def _write_reviews(app: AppState, folder: Path) -> None:
    """A review page per user with an outcome (`darkroom review`), a user whose every photo
    failed included (their page lists the dead letters), and where to open it."""
    blobs = BlobStore.from_settings(app.settings)
    topics = app.settings.topics
    outcomes = _read(app, topics.enriched, EventType.PHOTO_ENRICHED)
    outcomes += _read(app, topics.failed, EventType.PHOTO_FAILED)
    users = sorted({e["user_id"] for e in outcomes if e.get("user_id")})
    for user in users:
        page = write_page(collect_review(app.settings, app.codec, user), blobs, folder / user)
        console.print(f"review page of {user}: {page.resolve().as_uri()}", highlight=False)


def _demo_settings(base: Settings, workdir: Path) -> Settings:
    settings = private_broker_settings(base, workdir / "broker")
    return settings.model_copy(
        update={
            "blobs": settings.blobs.model_copy(update={"root": (workdir / "blobs").resolve()}),
            "worker": settings.worker.model_copy(
                update={"app_id": "darkroom-demo", "batch_wait_s": 0.1}
            ),
        }
    )


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _build_models(settings: Settings) -> None:
    repository = ModelRepository.from_settings(settings)
    built = [build_model(repository, m) for m in repository.manifests()]
    fresh = sum(result.built for result in built)
    console.print(
        f"2. models ready: {', '.join(r.manifest.key for r in built)} "
        f"({fresh} built now, {len(built) - fresh} from the cache)"
    )


def _wait_for_outcomes(settings: Settings, expected: int) -> None:
    def done() -> int:
        return sum(
            message_count(settings, t) for t in (settings.topics.enriched, settings.topics.failed)
        )

    progress = Progress(
        TextColumn("[bold]5. enriching"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    with progress:
        task = progress.add_task("outcomes", total=expected)
        while (count := done()) < expected:
            progress.update(task, completed=count)
            if time.monotonic() > deadline:
                fail(
                    f"only {count} of {expected} photos came out within {OUTCOME_TIMEOUT_S:g} s",
                    ExitCode.FAILED,
                )
            time.sleep(0.3)
    console.print(f"5. all {expected} uploads came out: enriched or dead-lettered")


def _read(app: AppState, topic: str, of: EventType) -> list[dict[str, Any]]:
    messages = tail(app.settings, app.codec, topic, from_beginning=True, idle_timeout_s=1.0)
    return [m.event.record for m in messages if m.event is not None and m.event.event_type is of]


def _show_results(app: AppState, names: dict[str, str], worker: WorkerProcess) -> None:
    enriched = sorted(
        _read(app, app.settings.topics.enriched, EventType.PHOTO_ENRICHED),
        key=lambda e: (e["user_id"], names.get(e["photo_id"], "")),
    )
    failed = _read(app, app.settings.topics.failed, EventType.PHOTO_FAILED)
    name: Callable[[str | None], str] = lambda photo_id: names.get(photo_id or "", "-")  # noqa: E731
    table = Table(title=f"{app.settings.topics.enriched}: {len(enriched)} photos")
    for column in (
        "user",
        "photo",
        "size",
        "labels",
        "tags",
        "faces",
        "nsfw",
        "text",
        "duplicate of",
        "ms",
    ):
        table.add_column(column, overflow="fold")
    for e in enriched:
        labels = ", ".join(f"{lb['name']} {lb['score']:.2f}" for lb in (e["labels"] or [])[:1])
        moderation = e["moderation"]["scores"].get("nsfw") if e["moderation"] else None
        duplicate = e["duplicate_of"]
        table.add_row(
            e["user_id"],
            name(e["photo_id"]),
            f"{e['width']}x{e['height']}",
            labels or "-",
            leaf_tags(e),
            _faces(e),
            "-" if moderation is None else f"{moderation:.2f}",
            _short(" | ".join(line["text"] for line in e["ocr"] or []) or "-", 28),
            f"{name(duplicate['photo_id'])} (d={duplicate['hash_distance']})" if duplicate else "-",
            f"{e['processing_ms']:.0f}",
        )
    console.print(table)
    assets = [item for e in enriched for item in (e.get("assets") or {}).get("items", [])]
    if assets:
        folder = app.settings.blobs.root / app.settings.blobs.assets_prefix
        console.print(
            f"thumbnails: {len(assets)} files, {sum(a['bytes'] for a in assets) / 1e6:.1f} MB, "
            f"under {folder} (<user>/<photo>/<size>.<format>; each named in its PhotoEnriched)",
            highlight=False,
        )
    dead = Table(title=f"{app.settings.topics.failed}: {len(failed)} dead letters")
    for column in ("user", "photo", "reason", "stage", "detail"):
        dead.add_column(column, overflow="fold")
    for f in failed:
        dead.add_row(
            f["user_id"] or "-",
            name(f["photo_id"]),
            f["reason"],
            f["stage"],
            _short(f["detail"], 60),
        )
    console.print(dead)
    for user in sorted(
        {e["user_id"] for e in enriched} | {f["user_id"] for f in failed if f["user_id"]}
    ):
        _, stats = worker.get(f"/users/{user}")
        console.print(f"GET /users/{user}: {stats}", highlight=False)
        status, tagged = worker.get(f"/users/{user}/tags")
        if status == 200 and tagged["tags"]:
            top = ", ".join(f"{t['name']} {t['photos']}" for t in tagged["tags"][:6])
            console.print(f"GET /users/{user}/tags: {top}", highlight=False)
        mine = [e["photo_id"] for e in enriched if e["user_id"] == user]
        if mine:  # "more like this" for the user's first photo by name
            status, similar = worker.get(f"/users/{user}/photos/{mine[0]}/similar?k=3")
            nearest = ", ".join(
                f"{name(s['photo_id'])} {s['score']:.2f}" for s in similar.get("similar", [])
            )
            if status == 200 and nearest:
                console.print(
                    f"GET /users/{user}/photos/{name(mine[0])}/similar: {nearest}",
                    highlight=False,
                )
        status, duplicates = worker.get(f"/users/{user}/duplicates")
        for group in duplicates.get("groups", []) if status == 200 else []:
            behind = "; ".join(
                f"{name(p['photo_id'])}: {p['behind_best']}" for p in group["photos"][1:]
            )
            console.print(
                f"GET /users/{user}/duplicates: best of {group['count']} is "
                f"{name(group['best'])}; before {behind}",
                highlight=False,
            )
        status, found = worker.get(f"/users/{user}/people")
        for person in found.get("people", []) if status == 200 else []:
            pid = person["person_id"]
            _, photos = worker.get(f"/users/{user}/people/{pid}/photos")
            cover = person["cover"] or {}
            square = cover.get("crop")
            where = f" (a {square[2] - square[0]:.0f} px square)" if square else ""
            console.print(
                f"GET /users/{user}/people: {pid}, {person['faces']} faces, cover "
                f"{name(cover.get('photo_id', '-'))}{where}; its photos: "
                + ", ".join(sorted(map(name, photos.get("photos", [])))),
                highlight=False,
            )
    _show_experiments(app)


def _faces(record: dict[str, Any]) -> str:
    """How many faces, and the persons among them (short ids)."""
    faces = record["faces"] or []
    persons = [f["person_id"][:7] for f in faces if f.get("person_id")]
    return f"{len(faces)}" + (f" ({', '.join(persons)})" if persons else "")


def _show_experiments(app: AppState) -> None:
    """The variants that ran in shadow beside production, as `experiments report` sums them."""
    reports = read_shadow(app.settings, app.codec).reports(
        ModelRepository.from_settings(app.settings)
    )
    if not reports:
        return
    table = Table(title=f"{app.settings.topics.shadow}: variants beside production")
    for column in ("variant", "against", "photos", "latency ratio", "agreement", "verdict"):
        table.add_column(column, overflow="fold")
    for report in reports:
        figures = [
            f"{name.replace('_agreement', '').replace('_', ' ')} {estimate.value:.2f}"
            for name, estimate in report.figures.items()
            if name not in ("latency_ratio", "error_rate")
        ]
        table.add_row(
            report.variant,  # versions: `darkroom experiments report`
            report.production.split("@")[0],
            str(report.photos),
            f"{report.figures['latency_ratio'].value:.2f}",
            ", ".join(figures),
            report.verdict,
        )
    console.print(table)
    console.print(
        "`darkroom experiments report` gives each figure's 95% interval; a dozen photos rarely "
        "decide a verdict (see docs/experiments.md)",
        highlight=False,
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
