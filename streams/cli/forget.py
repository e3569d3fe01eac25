"""`darkroom forget --user U [--photo P ...]`: ask the workers to forget photos or a user."""

from __future__ import annotations

import sys

import typer
from confluent_kafka import KafkaError, KafkaException

from streams.cli.common import console, fail, state
from streams.forget import requests_for, send
from streams.kafka.clients import make_producer, probe
from streams.kafka.refusals import missing_right
from streams.kafka.rights import require_topics

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
) -> None:
    """Publish a PhotoDeleted per --photo, or a UserErased, to the uploads topic (keyed by user
    id, after the user's uploads) and print what was sent. The workers then delete the photos'
    keys from every table, update the user's stats, groups, people and tags, and answer with a
    PhotoRemoved on photos.enriched.

    Exit 0 when the broker acknowledged every request, 1 when not, 2 for bad options, 3 when
    Kafka does not answer.
    """
    app = state(ctx)
    settings = app.settings
    if not user:
        fail("--user must not be empty")
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
