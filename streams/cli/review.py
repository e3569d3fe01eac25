"""`darkroom review --user U`: a page of what the models found on one user's photos."""

from __future__ import annotations

from pathlib import Path

import typer

from streams.blobs import BlobStore
from streams.cli.common import console, err_console, state
from streams.kafka.clients import probe
from streams.review import collect, write_page


def review(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Whose photos to show."),
    out: Path = typer.Option(
        Path("review"), "--out", "-o", help="Folder for index.html and its thumbnails."
    ),
) -> None:
    """Write a static page of the user's photos with the faces, text, tags, duplicate groups and
    similar photos found on them, their dead letters, and model variants beside production.

    It reads photos.enriched, photos.failed and photos.shadow from their beginnings (the whole
    topics: for a review, not for a dashboard) and copies each photo's largest thumbnail next to
    the page; open the printed file:// URL in a browser. Nothing is fetched from elsewhere.
    """
    app = state(ctx)
    probe(app.settings)  # BrokerUnreachableError: exit 3, through the CLI's handler
    with err_console.status(f"reading the outcome topics for user {user!r}"):
        found = collect(app.settings, app.codec, user)
    page = write_page(found, BlobStore.from_settings(app.settings), out)
    console.print(
        f"{len(found.photos)} photos, {len(found.dead_letters)} dead letters, "
        f"{len(found.shadows)} variant results: {page.resolve().as_uri()}",
        highlight=False,
    )
