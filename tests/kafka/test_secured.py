"""Darkroom on a secured Apache Kafka (SASL_SSL, mutual TLS, ACLs), each role with only the ACLs
`darkroom acls ROLE` lists: it works end to end, and every missing right or refused login is one
named line with its own exit code, within seconds."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from confluent_kafka import KafkaError

from streams.broker import KafkaCluster
from streams.broker.tls import LocalCA
from streams.config import Settings, settings_env
from streams.errors import ExitCode
from streams.kafka.acls import Grant, apply_grants, role_acls
from streams.kafka.clients import make_admin, make_consumer, make_producer, message_count
from streams.kafka.topics import TopicSpec, ensure_topics
from streams.worker.plan import planned_topics
from tests.cli.runner import darkroom
from tests.conftest import own_topics, secured_cluster
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, for_test_workers, running, wait_for
from tests.worker.publishing import publish_folder
from tests.worker.test_exactly_once import event_ids

pytestmark = pytest.mark.broker


def as_user(
    cluster: KafkaCluster, settings: Settings, user: str, mechanism: str = "SCRAM-SHA-512"
) -> Settings:
    """``settings`` (topics, worker, blobs) connecting as ``user``."""
    return settings.model_copy(update={"kafka": cluster.client_settings(user, mechanism).kafka})


def grant(admin: Settings, role: str, principal: str, *, skip: str = "", without: str = "") -> None:
    """Create ``role``'s ACLs for ``principal`` (leaving out grants on resources named
    ``skip``, and the operation ``without``), with the test's topic names and app id."""
    grants = [
        Grant(g.resource, g.name, tuple(op for op in g.operations if op != without), g.prefixed)
        for g in role_acls(role, admin)
        if g.name != skip
    ]
    apply_grants(make_admin(admin), [g for g in grants if g.operations], principal)


def env_of(settings: Settings) -> dict[str, str]:
    return {**settings_env(settings), "DARKROOM_LOG_LEVEL": "ERROR"}


def events_read(settings: Settings, topic: str) -> int:
    """How many events `darkroom tail --from-beginning` shows on ``topic`` as ``settings``."""
    tailed = darkroom(
        "tail", topic, "--from-beginning", "--json", "--timeout", "3", env=env_of(settings)
    )
    assert tailed.exit_code == 0, tailed.stderr
    return tailed.stdout.count('"photo_id"')


def tail_as_reader(cluster: KafkaCluster, admin: Settings, **kafka: Any) -> Result:
    """`darkroom tail` of photos.enriched as the reader, with ``kafka`` settings changed
    (``librdkafka`` entries are merged into the reader's)."""
    reader = as_user(cluster, admin, "reader")
    librdkafka = {**reader.kafka.librdkafka, **kafka.pop("librdkafka", {})}
    changed = reader.kafka.model_copy(update={"librdkafka": librdkafka, **kafka})
    settings = reader.model_copy(update={"kafka": changed})
    return darkroom("tail", reader.topics.enriched, "--timeout", "1", env=env_of(settings))


def test_wrong_password_is_named_in_seconds(
    secured_kafka: KafkaCluster, secured_admin: Settings, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    started = time.monotonic()
    result = tail_as_reader(secured_kafka, secured_admin, secret_files={"sasl.password": wrong})
    assert result.exit_code == ExitCode.AUTHENTICATION, result.stderr
    assert "authentication failed for user 'reader' (SCRAM-SHA-512)" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
    assert "embedded broker" not in result.stderr
    assert time.monotonic() - started < 5


def test_untrusted_certificate_is_named(
    secured_kafka: KafkaCluster, secured_admin: Settings, tmp_path: Path
) -> None:
    stranger = LocalCA.open(tmp_path / "other-ca")  # a CA the broker's certificate is not from
    librdkafka = {"ssl.ca.location": str(stranger.ca_file)}
    result = tail_as_reader(secured_kafka, secured_admin, librdkafka=librdkafka)
    assert result.exit_code == ExitCode.AUTHENTICATION, result.stderr
    assert f"not trusted by ssl.ca.location={stranger.ca_file}" in result.stderr


def test_a_mechanism_the_broker_does_not_offer_is_named(
    secured_kafka: KafkaCluster, secured_admin: Settings
) -> None:
    result = tail_as_reader(
        secured_kafka,
        secured_admin,
        librdkafka={"sasl.mechanism": "OAUTHBEARER"},
        secret_files={},
        oauth_token_provider="tests.kafka.test_security:fixed_token",
    )
    assert result.exit_code == ExitCode.AUTHENTICATION, result.stderr
    assert "does not offer sasl.mechanism OAUTHBEARER (it offers: " in result.stderr
    assert "SCRAM-SHA-512" in result.stderr


@pytest.mark.parametrize(
    ("user", "role", "skip", "command", "expected"),
    [
        ("nobody", None, "", ("publish",), "lacks DESCRIBE on topic 'photos.uploaded."),
        ("describer", "describe", "", ("publish",), "lacks WRITE on topic 'photos.uploaded."),
        ("no_group", "worker", "group", ("worker",), "lacks READ on group 'darkroom-test-"),
        ("no_txn", "worker", "", ("worker",), "lacks WRITE on transactional-id 'darkroom-test-"),
    ],
)
def test_a_missing_right_is_named(
    secured_kafka: KafkaCluster,
    secured_admin: Settings,
    tmp_path: Path,
    user: str,
    role: str | None,
    skip: str,
    command: tuple[str, ...],
    expected: str,
) -> None:
    admin = for_test_workers(secured_admin)
    settings = as_user(secured_kafka, admin, user)
    if user == "no_txn":
        worker = settings.worker.model_copy(update={"guarantee": "exactly_once"})
        settings = settings.model_copy(update={"worker": worker})
    if role == "describe":  # DESCRIBE on the uploads topic, nothing else
        grant_describe(admin, f"User:{user}", admin.topics.uploaded)
    elif role is not None:
        grant(admin, role, f"User:{user}", skip=admin.worker.app_id if skip == "group" else "")
    write_photos(tmp_path / "p", {"u1": 1}, size=64)
    args = (*command, str(tmp_path / "p")) if command == ("publish",) else command
    started = time.monotonic()
    # in a process of its own, as a user runs it
    result = subprocess.run(
        [sys.executable, "-c", "from streams.cli.app import main; main()", *args],
        env={**os.environ, **env_of(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stderr + result.stdout
    assert result.returncode == ExitCode.AUTHORIZATION, output
    assert f"principal User:{user} {expected}" in " ".join(result.stderr.split())
    assert "Traceback" not in output
    assert time.monotonic() - started < 20  # a Python start with every import included


def grant_describe(admin: Settings, principal: str, topic: str) -> None:
    apply_grants(make_admin(admin), [Grant("topic", topic, ("DESCRIBE",))], principal)


@pytest.mark.timeout(300)
def test_each_role_with_only_its_acls_end_to_end_and_the_worker_without_create(
    secured_kafka: KafkaCluster, secured_admin: Settings, tmp_path: Path, repository: object
) -> None:
    admin = for_test_workers(secured_admin)
    for role, user in (("publisher", "publisher"), ("reader", "reader")):
        grant(admin, role, f"User:{user}")
    # the worker on a cluster that forbids it CREATE: an administrator made its topics from
    # `darkroom topics plan`
    grant(admin, "worker", "User:worker", without="CREATE")
    ensure_topics(admin, planned_topics(admin))
    publisher = as_user(secured_kafka, admin, "publisher", "SCRAM-SHA-256")
    worker = as_user(secured_kafka, admin, "worker", "SCRAM-SHA-512")
    reader = as_user(secured_kafka, admin, "reader", "PLAIN")

    write_photos(tmp_path / "photos", {"u1": 3, "u2": 3}, size=96)
    published = darkroom("publish", str(tmp_path / "photos"), env=env_of(publisher))
    assert published.exit_code == 0, published.stderr
    with running(WorkerProcess(worker, tmp_path, "secured")):
        wait_for(lambda: len(event_ids(admin)) >= 6, 120, "six outcomes")
    assert events_read(reader, reader.topics.enriched) == 6

    # and nothing more: the worker may not write uploads, nor read another application's topic
    other = f"other.app.{uuid.uuid4().hex[:6]}"
    ensure_topics(admin, [TopicSpec(other, 1, 1)])
    producer = make_producer(worker)
    failures: list[KafkaError] = []
    producer.produce(worker.topics.uploaded, b"x", on_delivery=lambda e, _m: failures.append(e))
    producer.flush(15)
    assert failures and failures[0] is not None
    assert failures[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    consumer = make_consumer(worker)
    try:
        found = consumer.list_topics(other, timeout=10).topics[other]
        assert found.error is not None
        assert found.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        consumer.close()


def test_replay_and_downstream_roles_with_only_their_acls(
    secured_kafka: KafkaCluster, secured_admin: Settings, tmp_path: Path
) -> None:
    admin = secured_admin
    write_photos(tmp_path / "photos", {"u1": 3}, size=64)
    publish_folder(admin, tmp_path / "photos")
    grant(admin, "replay-export", "User:exporter")
    grant(admin, "replay-into", "User:replayer")
    group = f"search-indexer-{uuid.uuid4().hex[:6]}"
    apply_grants(make_admin(admin), role_acls("consumer", admin, group=group), "User:consumer")

    out = tmp_path / "export.jsonl"
    exporter = as_user(secured_kafka, admin, "exporter")
    exported = darkroom(
        "replay", "--topic", admin.topics.uploaded, "--out", str(out), env=env_of(exporter)
    )
    assert exported.exit_code == 0, exported.stderr
    assert len(out.read_text().splitlines()) == 3

    replayer = as_user(secured_kafka, admin, "replayer", "SCRAM-SHA-256")
    replayed = darkroom(
        "replay", "--topic", admin.topics.uploaded, "--into", admin.topics.uploaded,
        env=env_of(replayer),
    )  # fmt: skip
    assert replayed.exit_code == 0, replayed.stderr
    assert message_count(admin, admin.topics.uploaded) == 6

    # a downstream consumer of photos.enriched: joins its group, reads, commits
    producer = make_producer(admin)
    producer.produce(admin.topics.enriched, b"an enriched event", key=b"u1")
    producer.flush(15)
    consumer = make_consumer(as_user(secured_kafka, admin, "consumer"), group)
    try:
        consumer.subscribe([admin.topics.enriched])
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
        assert message is not None and message.error() is None, message and message.error()
        consumer.commit(message, asynchronous=False)
    finally:
        consumer.close()


@pytest.mark.timeout(600)
def test_exactly_once_over_sasl_plain_survives_kill_minus_9(
    secured_kafka: KafkaCluster, secured_admin: Settings, tmp_path: Path, repository: object
) -> None:
    """faust-streaming/faust#794 reports SASL PLAIN + exactly_once failing at producer start;
    here the worker logs in with PLAIN, holds only its exactly-once ACLs, and is killed once
    mid-stream (what many kills do to exactly_once is test_exactly_once's subject)."""
    admin = for_test_workers(secured_admin, guarantee="exactly_once")
    grant(admin, "worker-exactly-once", "User:worker_eos")
    worker = as_user(secured_kafka, admin, "worker_eos", "PLAIN")
    write_photos(tmp_path / "photos", {f"u{i}": 6 for i in range(8)}, size=96)
    uploads = {d.photo_id for d in publish_folder(admin, tmp_path / "photos")}
    rng = random.Random(uuid.uuid4().int)
    process = WorkerProcess(worker, tmp_path, "eos")
    for threshold in (rng.randrange(6, 30),):
        process.start().wait_ready()
        wait_for(lambda t=threshold: sum(event_ids(admin).values()) >= t, 240, f"{threshold}")
        process.kill()
    with running(process):
        wait_for(lambda: set(event_ids(admin)) >= uploads, 240, "every upload's outcome")
    seen = event_ids(admin)
    assert {p: n for p, n in seen.items() if n != 1} == {}
    assert set(seen) == uploads


# -- mutual TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A cluster whose SSL listener requires a client certificate (CN=<user> = User:<user>)."""
    yield from secured_cluster(tmp_path_factory, "ssl", ["publisher", "reader"])


def test_mutual_tls_publish_and_read_as_the_certificate_principal(
    mtls_kafka: KafkaCluster, tmp_path: Path
) -> None:
    admin = own_topics(mtls_kafka.client_settings(), tmp_path)
    grant(admin, "publisher", "User:publisher")
    grant(admin, "reader", "User:reader")
    write_photos(tmp_path / "photos", {"u1": 2}, size=64)
    publisher = as_user(mtls_kafka, admin, "publisher")
    assert darkroom("publish", str(tmp_path / "photos"), env=env_of(publisher)).exit_code == 0
    reader = as_user(mtls_kafka, admin, "reader")
    assert events_read(reader, admin.topics.uploaded) == 2

    # without a client certificate the listener refuses the handshake: a named error
    anonymous = dict(reader.kafka.librdkafka)
    del anonymous["ssl.certificate.location"], anonymous["ssl.key.location"]
    kafka = reader.kafka.model_copy(update={"librdkafka": anonymous})
    result = darkroom("tail", admin.topics.uploaded, "--timeout", "1",
                      env=env_of(reader.model_copy(update={"kafka": kafka})))  # fmt: skip
    assert result.exit_code == ExitCode.AUTHENTICATION, result.stderr
    assert "client certificate" in result.stderr or "TLS handshake failed" in result.stderr
