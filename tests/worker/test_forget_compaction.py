"""On Apache Kafka, an erasure's tombstones make the log cleaner remove the user's data from
the changelog topics themselves: afterwards not one record of the user is left in them, value
or tombstone, but the marker that refuses a late upload. (With the topics' defaults the values
go at the first cleaning after the segment rolls, the tombstones after delete.retention.ms,
24 hours; here both are made short.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from streams.config import Settings, settings_env
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import make_admin, make_producer
from streams.tail import scan_many
from streams.worker.local_state import changelog_topic
from streams.worker.residue import MARKERS, TABLES, theirs
from tests.cli.runner import darkroom
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

pytestmark = pytest.mark.broker
# segments that roll at the next record after 100 ms, cleaned at once, tombstones dropped at once
SMALL = {
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "0",
}


def records_of(settings: Settings, user: str) -> list[tuple[str, str, bool]]:
    """(table, key, tombstone?) of every record of ``user`` still in a changelog topic."""
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    topics = {changelog_topic(settings.worker.app_id, t): t for t in TABLES}
    found = []
    for message in scan_many(settings, codec, list(topics)):
        key = (message.key or b"").decode()
        if theirs(key.strip('"'), user):
            found.append((topics[message.topic], key, not message.raw))
    return found


def roll(settings: Settings, topics: list[str], partitions: int) -> None:
    """A record in every partition of ``topics`` (a tombstone of a key nobody has), so that
    each partition's segment holding the erasure is no longer the active one: the cleaner
    never cleans the active segment."""
    producer = make_producer(settings)
    for topic in topics:
        for partition in range(partitions):
            producer.produce(topic, key=b'"roll"', value=None, partition=partition)
    assert producer.flush(10) == 0


@pytest.mark.timeout(300)
def test_an_erasure_is_compacted_out_of_every_changelog(
    kafka_worker_settings: Settings, tmp_path: Path
) -> None:
    settings, env = kafka_worker_settings, settings_env(kafka_worker_settings)
    write_photos(tmp_path / "photos", {"ann": 2, "bob": 3}, size=160)
    delivered = publish_folder(settings, tmp_path / "photos")
    topics = [changelog_topic(settings.worker.app_id, t) for t in TABLES]
    with running(WorkerProcess(settings, tmp_path, "w")):
        admin = make_admin(settings)
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in SMALL.items()
                ],
            )
            for topic in topics
        ]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(10)
        wait_for_outcomes(settings, len(delivered))
        wait_for(lambda: records_of(settings, "bob"), 60, "bob's tables in the changelogs")
        assert darkroom("forget", "--user", "bob", "--yes", env=env).exit_code == 0
        wait_for(
            lambda: darkroom("forget", "--verify", "--user", "bob", env=env).exit_code == 0,
            60,
            "bob's keys tombstoned",
        )

        def bob_left() -> list[tuple[str, str, bool]]:
            return [r for r in records_of(settings, "bob") if r[0] != MARKERS]

        def rolled_and_cleaned() -> bool:
            # the values go in the first cleaning after a roll; the tombstones in a later one,
            # once delete.retention.ms has passed: each try rolls again (more to clean)
            roll(settings, topics, settings.topics.partitions)
            return not bob_left()

        wait_for(
            rolled_and_cleaned,
            120,
            "the log cleaner to remove every record of bob, values and tombstones",
            detail=bob_left,
        )
    markers = [r for r in records_of(settings, "bob") if r[0] == MARKERS]
    assert [(table, tombstone) for table, _, tombstone in markers] == [(MARKERS, False)]
    assert any(theirs(k.strip('"'), "ann") for _, k, _ in records_of(settings, "ann"))
