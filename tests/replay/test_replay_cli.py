"""`darkroom replay` on the real broker: exact ranges, times, filters, modes, resume, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka import TopicPartition

from streams.config import Settings, settings_env
from streams.contracts import headers
from streams.contracts.events import new_upload
from streams.contracts.schemas import EventType
from streams.kafka.clients import make_consumer, make_producer
from streams.kafka.topics import TopicSpec, ensure_topics
from tests.cli.runner import darkroom
from tests.contracts.test_java_avro import _enriched
from tests.photos import write_photos
from tests.worker.harness import count, read_topic, wait_for
from tests.worker.publishing import codec, deliver, publish_folder

pytestmark = pytest.mark.broker
# A day ago, on the hour (ms). Not a fixed date: Apache Kafka's time retention (7 days) deletes
# records whose timestamps are older than that, and did so in the middle of a test ("Offset out
# of range" when reading them).
T0 = (int(time.time()) // 3600 - 24) * 3600 * 1000
USERS = ["u0", "u1", "u2", "u3"]


def produce_uploads(settings: Settings, count: int) -> list[dict[str, Any]]:
    """``count`` uploads, upload i at T0 + i seconds, users round-robin, a trace header."""
    producer = make_producer(settings)
    made = []
    for i in range(count):
        user = USERS[i % len(USERS)]
        record = new_upload(
            photo_id=f"p{i:02d}",
            user_id=user,
            content_type="image/jpeg",
            byte_size=1,
            blob=f"file:///nowhere/{i}.jpg",
        )
        deliver(
            producer,
            settings.topics.uploaded,
            key=user.encode(),
            timestamp=T0 + i * 1000,
            value=codec(settings).encode(EventType.PHOTO_UPLOADED, record),
            headers=[("trace", f"t{i}".encode())],
        )
        made.append(record)
    return made


def export(env: dict[str, str], tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    result = darkroom("replay", *args, "--out", str(out), env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + "Z"


def test_offset_and_time_ranges_are_exact(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 20)
    topic = kafka.topics.uploaded
    everything = export(kafka_env, tmp_path, "--topic", topic)
    assert sorted(r["event"]["photo_id"] for r in everything) == [f"p{i:02d}" for i in range(20)]
    partition = everything[0]["partition"]
    in_partition = sorted(r["offset"] for r in everything if r["partition"] == partition)
    assert in_partition == list(range(len(in_partition)))

    rows = export(
        kafka_env,
        tmp_path,
        "--topic",
        topic,
        "--partitions",
        str(partition),
        "--from-offset",
        "1",
        "--to-offset",
        "3",
    )
    assert [(r["partition"], r["offset"]) for r in rows] == [(partition, 1), (partition, 2)]

    out = tmp_path / "times.jsonl"
    result = darkroom(
        "replay",
        "--topic",
        topic,
        "--from-time",
        iso(T0 + 5000),
        "--to-time",
        iso(T0 + 12000),
        "--out",
        str(out),
        env=kafka_env,
    )
    assert result.exit_code == 0, result.output
    # the embedded broker always answers 0; Apache Kafka's answer is right and used as it is
    fell_back = "binary search on timestamps" in result.stderr
    assert fell_back == (kafka.broker.engine == "embedded"), result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["event"]["photo_id"] for r in rows) == [f"p{i:02d}" for i in range(5, 12)]


def test_filters_limit_and_dry_run(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 12)
    topic = kafka.topics.uploaded
    assert {
        r["event"]["user_id"] for r in export(kafka_env, tmp_path, "--topic", topic, "--user", "u1")
    } == {"u1"}
    assert len(export(kafka_env, tmp_path, "--topic", topic, "--user", "u1")) == 3
    assert [
        r["event"]["photo_id"]
        for r in export(kafka_env, tmp_path, "--topic", topic, "--photo", "p07")
    ] == ["p07"]
    assert len(export(kafka_env, tmp_path, "--topic", topic, "--limit", "5")) == 5
    dry = darkroom("replay", "--topic", topic, "--dry-run", env=kafka_env)
    assert dry.exit_code == 0, dry.output
    assert re.search(r"all\s*│[^│]*│[^│]*│\s*12\s*│", dry.stdout), dry.stdout


def test_into_copies_keys_and_headers_and_redrives_dead_letters(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    made = produce_uploads(kafka, 6)
    copy_topic = f"copy.{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, [TopicSpec(copy_topic, 4, 1)])
    result = darkroom(
        "replay",
        "--topic",
        kafka.topics.uploaded,
        "--into",
        copy_topic,
        "--foreign",
        "--force",
        env=kafka_env,
    )
    assert result.exit_code == 0, result.output
    copies = read_topic(kafka, copy_topic)
    assert sorted(c["photo_id"] for c in copies) == [r["photo_id"] for r in made]
    assert all(c["_key"] == c["user_id"].encode() for c in copies)

    # dead letters of two uploads, re-driven: the originals come back, byte for byte
    originals = read_topic(kafka, kafka.topics.uploaded)[:2]
    producer = make_producer(kafka)
    for original in originals:
        dead = {
            "reason": "BLOB_MISSING",
            "stage": "fetch_blob",
            "detail": "gone",
            "worker": "w",
            "failed_at": original["uploaded_at"],
            "event_id": original["event_id"],
            "photo_id": original["photo_id"],
            "user_id": original["user_id"],
            "source": None,
            "original_key": original["_key"],
            "original_value": original["_value"],
            "original_decoded": True,
        }
        producer.produce(
            kafka.topics.failed,
            key=original["_key"],
            value=codec(kafka).encode(EventType.PHOTO_FAILED, dead),
        )
    producer.flush(10)
    redrive_topic = f"redrive.{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, [TopicSpec(redrive_topic, 4, 1)])
    result = darkroom(
        "replay",
        "--topic",
        kafka.topics.failed,
        "--reason",
        "BLOB_MISSING",
        "--into",
        redrive_topic,
        "--foreign",
        env=kafka_env,
    )
    assert result.exit_code == 0, result.output
    redriven = read_topic(kafka, redrive_topic)
    assert sorted(r["_value"] for r in redriven) == sorted(o["_value"] for o in originals)
    assert sorted(r["_key"] for r in redriven) == sorted(o["_key"] for o in originals)


def test_replay_headers_name_the_source(kafka: Settings, kafka_env: dict[str, str]) -> None:
    produce_uploads(kafka, 2)
    copy_topic = f"copy.{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, [TopicSpec(copy_topic, 1, 1)])
    assert (
        darkroom(
            "replay",
            "--topic",
            kafka.topics.uploaded,
            "--into",
            copy_topic,
            "--foreign",
            "--force",
            env=kafka_env,
        ).exit_code
        == 0
    )
    consumer = make_consumer(kafka)
    consumer.assign([TopicPartition(copy_topic, 0, 0)])
    message = consumer.poll(10)
    consumer.close()
    names = dict(message.headers())
    assert names["trace"].startswith(b"t")  # the original header is kept
    assert names[headers.REPLAY_ID] and names[headers.FORCE] == b"1"
    assert names[headers.REPLAY_SOURCE].decode().startswith(kafka.topics.uploaded + "/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-offset", "2", "--to-offset", "1", "--dry-run"], "is before the start"),
        (["--partitions", "9", "--dry-run"], "partition 9 does not exist"),
        (["--from-offset", "999", "--dry-run"], "past the end"),
        (["--into", "x", "--reprocess"], "choose one of --into, --reprocess"),
        ([], "say what to do"),
        (["--stale-models", "--out", "-"], "--stale-models goes with --reprocess"),
        (["--from-time", "yesterday", "--dry-run"], "not a time"),
        (["--from-time", "-1h", "--from-offset", "1", "--dry-run"], "choose one of"),
    ],
)
def test_bad_arguments_exit_2_before_reading(
    kafka: Settings, kafka_env: dict[str, str], args: list[str], message: str
) -> None:
    produce_uploads(kafka, 12)  # u0's partition holds 3 uploads
    partition = next(
        u["_partition"] for u in read_topic(kafka, kafka.topics.uploaded) if u["user_id"] == "u0"
    )
    if "--partitions" not in args:
        args = ["--partitions", str(partition), *args]
    result = darkroom("replay", "--topic", kafka.topics.uploaded, *args, env=kafka_env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_unknown_topics_exit_2_and_a_replay_into_its_own_topic_ends(
    kafka: Settings, kafka_env: dict[str, str]
) -> None:
    result = darkroom("replay", "--topic", "nope", "--dry-run", env=kafka_env)
    assert result.exit_code == 2 and "does not exist" in result.stderr
    produce_uploads(kafka, 5)
    topic = kafka.topics.uploaded
    result = darkroom("replay", "--topic", topic, "--into", topic, "--force", env=kafka_env)
    assert result.exit_code == 0 and "written 5" in result.stdout  # the end was fixed at start
    assert len(read_topic(kafka, topic)) == 10


def test_a_copy_writes_only_what_its_topic_carries(
    kafka: Settings, kafka_env: dict[str, str]
) -> None:
    uploads, enriched = kafka.topics.uploaded, kafka.topics.enriched
    result = darkroom("replay", "--topic", uploads, "--into", enriched, env=kafka_env)
    assert result.exit_code == 2 and "carries PhotoEnriched or PhotoRemoved events" in result.stderr
    # a topic that is not Darkroom's may hold anything: each record is checked as it is copied
    mixed = f"mixed.{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, [TopicSpec(mixed, 1, 1)])
    (upload,) = produce_uploads(kafka, 1)
    producer = make_producer(kafka)
    producer.produce(mixed, key=b"u", value=read_topic(kafka, uploads)[0]["_value"])
    enriched_event = _enriched(read_topic(kafka, uploads)[0])
    producer.produce(
        mixed, key=b"u", value=codec(kafka).encode(EventType.PHOTO_ENRICHED, enriched_event)
    )
    producer.flush(10)
    result = darkroom("replay", "--topic", mixed, "--into", uploads, "--force", env=kafka_env)
    assert result.exit_code == 1, result.output
    assert (
        "refused 1 selected event(s) that are not PhotoUploaded or PhotoDeleted or "
        "UserErased events" in result.stderr
    )
    assert [u["photo_id"] for u in read_topic(kafka, uploads)] == [upload["photo_id"]] * 2


def test_resume_after_kill_writes_each_output_once(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 40)
    copy_topic = f"copy.{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka, [TopicSpec(copy_topic, 4, 1)])
    args = [
        "replay",
        "--topic",
        kafka.topics.uploaded,
        "--into",
        copy_topic,
        "--foreign",
        "--rate",
        "15",
        "--checkpoint",
        str(tmp_path / "cp.json"),
    ]
    env = {**os.environ, **settings_env(kafka)}
    runner = [sys.executable, "-c", "from streams.cli.app import main; main()"]
    first = subprocess.Popen(
        runner + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: count(kafka, copy_topic) > 0, 60, "the first copies")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    copied_before = len(read_topic(kafka, copy_topic))
    assert 0 < copied_before < 40, copied_before
    result = darkroom(*args, "--resume", env=kafka_env)
    assert result.exit_code == 0, result.output
    sources = [c["photo_id"] for c in read_topic(kafka, copy_topic)]
    assert sorted(sources) == [f"p{i:02d}" for i in range(40)]  # each exactly once


def test_reprocess_honours_idempotency_and_picks_stale_models(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path, repository: Any
) -> None:
    write_photos(tmp_path / "photos", {"ann": 2, "ben": 2}, size=96)
    delivered = publish_folder(kafka, tmp_path / "photos")
    uploads = kafka.topics.uploaded

    def reprocess(*extra: str) -> str:
        result = darkroom("replay", "--topic", uploads, "--reprocess", *extra, env=kafka_env)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "written 4, skipped 0" in reprocess()
    first = read_topic(kafka, kafka.topics.enriched)
    assert sorted(e["photo_id"] for e in first) == sorted(d.photo_id for d in delivered)
    for event in first:  # the shared pipeline stored each photo's thumbnails
        items = event["assets"]["items"]
        assert len(items) == 3 and all(Path(urlsplit(i["uri"]).path).is_file() for i in items)
    assert "written 0, skipped 4" in reprocess()  # all done with the current models

    # pretend one photo was enriched by an older moderation model
    old = {k: v for k, v in first[0].items() if not k.startswith("_")}
    old["produced_by"] = {
        **old["produced_by"],
        "moderation": {"name": "open_nsfw", "version": "yahoo-open-nsfw-0"},
    }
    producer = make_producer(kafka)
    producer.produce(
        kafka.topics.enriched,
        key=first[0]["_key"],
        value=codec(kafka).encode(EventType.PHOTO_ENRICHED, old),
    )
    producer.flush(10)
    assert "written 1, skipped 3" in reprocess("--stale-models")
    latest = read_topic(kafka, kafka.topics.enriched)
    redone = [e for e in latest if e["photo_id"] == old["photo_id"]]
    assert redone[-1]["produced_by"]["moderation"]["name"] == "open_nsfw_int8"
    # a new attempt at the same upload: its own outcome id, the next attempt number
    assert redone[-1]["upload_event_id"] == old["upload_event_id"]
    assert (redone[-1]["attempt"], old["attempt"]) == (2, 1)
    assert redone[-1]["event_id"] != old["event_id"]
    assert "written 4, skipped 0" in reprocess("--force")
