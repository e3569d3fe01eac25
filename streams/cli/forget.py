"""`darkroom forget --user U [--photo P ...]`: ask the workers to forget photos or a user."""

from __future__ import annotations

import sys

import typer
from confluent_kafka import KafkaError, KafkaException

from streams.blobs import BlobStore
from streams.blobs.assets import AssetStore
from streams.cli.common import AppState, ExitCode, console, err_console, fail, state
from streams.forget import requests_for, send
from streams.kafka.clients import make_producer, probe
from streams.kafka.refusals import missing_right
from streams.kafka.rights import require_topics
from streams.worker.residue import TABLES, Left, left_of

DELIVERY_TIMEOUT_S = 30.0


def forget(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Whose photos (or who) to forget."),
    photos: list[str] = typer.Option(
        [], "--photo", "-p", help="A photo id to forget (repeat it); none: erase the user."
    ),
    reason: str | None = typer.Option(
        None,
        "--reason",
        help="Why, for the audit trail (default: user_request for photos, account_closed for "
        "a user).",
    ),
    yes: bool = typer.Option(
        False, "--yes", help="Erase a whole user without asking (needed without a terminal)."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Send nothing: read every table's changelog to its end and list what is left of "
        "the user (or of each --photo).",
    ),
) -> None:
    """Publish a PhotoDeleted per --photo, or a UserErased, to the uploads topic (keyed by user
    id, after the user's uploads) and print what was sent. The workers then delete the photos'
    keys from every table, update the user's stats, groups, people and tags, and answer with a
    PhotoRemoved on photos.enriched.

    With --verify: exit 0 when nothing of them is left but the markers that refuse a late
    upload, 1 when something is. Otherwise exit 0 when the broker acknowledged every request,
    1 when not, 2 for bad options, 3 when Kafka does not answer.
    """
    app = state(ctx)
    settings = app.settings
    if not user:
        fail("--user must not be empty")
    if verify:
        _verify(app, user, photos)
        return
    if not photos and not yes:
        if not sys.stdin.isatty():
            fail(f"erasing user {user!r} forgets every photo of theirs: add --yes to confirm")
        typer.confirm(f"Erase user {user!r} and every photo of theirs?", abort=True)
    requests = requests_for(
        user, photos, reason or ("user_request" if photos else "account_closed")
    )
    metadata = probe(settings)  # BrokerUnreachableError: exit 3, through the CLI's handler
    topic = settings.topics.uploaded
    require_topics(settings, metadata, [topic], "the workers read requests from it")
    producer = make_producer(settings, **{"message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)})
    try:
        delivered = send(producer, app.codec, topic, requests, DELIVERY_TIMEOUT_S + 5)
    except KafkaException as exc:
        if exc.args[0].code() not in (
            KafkaError.CLUSTER_AUTHORIZATION_FAILED,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise
        raise missing_right(settings, "WRITE", "topic", topic) from None
    for item in delivered:
        what = f"photo {item.request.photo_id}" if item.request.photo_id else "every photo"
        console.print(
            f"sent {item.request.event_type} {item.request.record['event_id']}: {what} of user "
            f"{item.request.user_id!r} -> {topic}/{item.partition}@{item.offset}",
            highlight=False,
        )


def _verify(app: AppState, user: str, photos: list[str]) -> None:
    """What is left of ``user`` (or of each of ``photos``) in every table's changelog."""
    probe(app.settings)  # BrokerUnreachableError: exit 3, through the CLI's handler
    subjects: list[str | None] = list(dict.fromkeys(photos)) or [None]
    found: list[Left] = []
    with err_console.status(f"reading {len(TABLES)} tables' changelogs"):
        for photo in subjects:
            found += left_of(app.settings, app.codec, user, photo)
    with err_console.status("listing the thumbnails' folders"):
        assets = AssetStore.from_settings(app.settings, BlobStore.from_settings(app.settings))
        for photo in subjects:
            found += [Left("assets", uri, "stored") for uri in assets.left(user, photo)]
    markers = [f for f in found if f.marker]
    left = [f for f in found if not f.marker]
    what = f"photo(s) {', '.join(photos)} of user {user!r}" if photos else f"user {user!r}"
    for item in left:
        console.print(f"left: {item.table} {item.key} ({item.why})", highlight=False)
    for item in markers:
        console.print(f"marker: {item.table} {item.key} (refuses late uploads)", highlight=False)
    if left:
        console.print(
            f"{len(left)} key(s) or asset(s) of {what} left in {len(TABLES)} tables and the "
            "assets' stores",
            highlight=False,
        )
        raise typer.Exit(int(ExitCode.FAILED))
    console.print(
        f"nothing of {what} left in {len(TABLES)} tables' changelogs or the assets' stores"
        + (f" but {len(markers)} marker(s)" if markers else ""),
        highlight=False,
    )
