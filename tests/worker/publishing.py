"""Put uploads (good, corrupt and malformed) on the uploads topic for worker tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streams.blobs import BlobStore
from streams.config import Settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.events import new_upload, utc_now
from streams.contracts.schemas import EventType, SchemaRepository
from streams.kafka.clients import make_producer
from streams.publish import Publisher, PublishReport, collect


def codec(settings: Settings) -> SingleObjectCodec:
    return SingleObjectCodec(SchemaRepository(settings.paths.schemas))


def publish_report(settings: Settings, folder: Path, to: str | None = None) -> PublishReport:
    """Publish every photo under ``folder`` (user = sub-folder name) to the blob root, or to
    ``to`` (s3://bucket/prefix); what was delivered and what was not."""
    files, problems = collect([str(folder)])
    assert not problems
    publisher = Publisher(
        make_producer(settings),
        codec(settings),
        BlobStore.from_settings(settings).writer(to),
        settings.topics.uploaded,
        settings.blobs.inline_max_bytes,
    )
    return publisher.publish(files)


def publish_folder(settings: Settings, folder: Path, to: str | None = None) -> list[Any]:
    """Publish every photo under ``folder``; the delivered ones (every one must be)."""
    report = publish_report(settings, folder, to)
    assert not report.failed
    return report.delivered


def produce(settings: Settings, items: list[tuple[bytes, bytes]]) -> None:
    """Raw (key, value) messages onto the uploads topic, each delivered before the next."""
    producer = make_producer(settings)
    for key, value in items:
        deliver(producer, settings.topics.uploaded, key=key, value=value)


def deliver(producer: Producer, topic: str, tries: int = 3, **message: Any) -> None:
    """Send one message and wait for its delivery report, sending it again after a refusal.

    ``flush()`` returning 0 only says the queue is empty: a message the broker refused has left
    it too. One test lost its first record that way, once in many CI runs, on a topic created a
    moment before (Apache Kafka). Sending one at a time keeps the test's order (and timestamps)
    whatever is sent again; the refusal is printed, so a run that needed it says so.
    """
    errors: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err.str())

    for attempt in range(1, tries + 1):
        errors.clear()
        producer.produce(topic, on_delivery=report, **message)
        assert producer.flush(10) == 0, f"{topic}: no delivery report within 10 s"
        if not errors:
            return
        print(f"{topic}: delivery {attempt} of {tries} refused: {errors[0]}", file=sys.stderr)
    raise AssertionError(f"{topic}: not delivered in {tries} tries: {errors[0]}")


def upload(settings: Settings, photo_id: str, blob: str | bytes, **extra: Any) -> bytes:
    """An encoded PhotoUploaded for user 'mallory'."""
    record = new_upload(
        photo_id=photo_id,
        user_id="mallory",
        content_type="image/jpeg",
        byte_size=10,
        blob=blob,
        **extra,
    )
    return codec(settings).encode(EventType.PHOTO_UPLOADED, record)


def not_an_upload(settings: Settings) -> bytes:
    """A valid Darkroom event of the wrong type (a dead letter) on the uploads topic."""
    return codec(settings).encode(
        EventType.PHOTO_FAILED,
        {
            "reason": "UNKNOWN",
            "stage": "x",
            "detail": "x",
            "worker": "x",
            "failed_at": utc_now(),
            "event_id": None,
            "photo_id": None,
            "user_id": None,
            "source": None,
            "original_key": None,
            "original_value": b"",
            "original_decoded": False,
        },
    )
