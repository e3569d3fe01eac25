"""The local Apache Kafka node: lifecycle, durable data, clear setup errors, the jar cache.

One real node (module-scoped: two JVM starts in all); every other test fakes `java` or `mvn`
with a shell script on PATH, so it needs neither and starts no JVM.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import (
    BrokerError,
    EmbeddedBroker,
    KafkaCluster,
    KafkaSetupError,
    local_broker,
    private_broker_settings,
    recorded_engines,
)
from streams.broker.jars import MARKER, resolve_jars
from streams.broker.kafka_config import ClusterLayout
from streams.config import Settings, load_settings
from streams.kafka.clients import BrokerUnreachableError, make_consumer, make_producer, probe
from streams.kafka.topics import TopicSpec, ensure_topics
from tests.kafka_required import require_kafka

pytestmark = pytest.mark.broker

FAKE_JAVA = """#!/bin/sh
if [ "$1" = "-version" ]; then echo '{version}' >&2; exit 0; fi
case "$*" in
  *StorageTool*) echo "formatted"; exit 0 ;;
  *) echo "cannot open storage: boom"; exit 3 ;;
esac
"""


def kafka_settings(state_dir: Path, **broker: object) -> Settings:
    settings = private_broker_settings(load_settings(), state_dir, engine="kafka", nodes=1)
    if broker:
        own = settings.broker.model_copy(update=broker)
        settings = settings.model_copy(update={"broker": own})
    return settings


def script(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_java(folder: Path, version: str = 'openjdk version "17.0.15" 2025-04-15') -> Path:
    return script(folder, "java", FAKE_JAVA.format(version=version))


def complete_cache(cache_dir: Path, version: str = "4.4.0") -> Path:
    jars = cache_dir / version
    jars.mkdir(parents=True)
    (jars / MARKER).write_text("{}")
    return cache_dir


@pytest.fixture
def only_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH is one empty folder of this test's (put fakes there); no JAVA_HOME."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return folder


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    require_kafka()
    cluster = KafkaCluster(kafka_settings(tmp_path_factory.mktemp("kafka") / "state"))
    yield cluster
    cluster.stop()


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = make_producer(settings, **{"message.timeout.ms": 30000})
    errors: list[object] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None] * len(values)


def consume(settings: Settings, topic: str, count: int, timeout_s: float = 30.0) -> list[bytes]:
    consumer = make_consumer(settings)
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
    finally:
        consumer.close()
    return values


@pytest.mark.timeout(240)  # two JVM starts: ~20 s here, more on a loaded machine
def test_lifecycle_data_survives_a_restart(node: KafkaCluster) -> None:
    settings = node.settings
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a stale pid file naming a stranger: never signalled, and it does not block start
        node.pid_file.parent.mkdir(parents=True, exist_ok=True)
        stale = {"engine": "kafka", "nodes": {"1": {"pid": stranger.pid, "started_at": 0}}}
        node.pid_file.write_text(json.dumps(stale))
        assert not node.status().running
        started = node.start()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert started.running and started.detail == "started" and started.pid != stranger.pid
    assert node.log_file.is_file() and "KafkaConfig values" in node.log_file.read_text()
    status = node.status()
    assert status.detail == "answering Metadata" and [n.running for n in status.nodes] == [True]
    assert node.start().pid == started.pid  # idempotent: no second process

    values = [f"photo-{i}".encode() for i in range(20)]
    ensure_topics(settings, [TopicSpec("durable", 2, 1)])
    produce(settings, "durable", values)
    meta = (node.node_dir(1) / "data" / "meta.properties").read_text()

    # status and stop follow the pid file, not the port of whoever asks
    moved = settings.broker.model_copy(update={"port": node.port + 1})
    elsewhere = KafkaCluster(settings.model_copy(update={"broker": moved}))
    assert elsewhere.status().pid == started.pid
    assert elsewhere.status().bootstrap == node.bootstrap
    assert elsewhere.stop() is True
    assert not node.status().running and not node.pid_file.exists()
    with pytest.raises(BrokerUnreachableError):
        probe(settings, timeout_s=1.0)
    assert node.stop() is False

    again = node.start()
    assert again.running and again.pid != started.pid
    assert (node.node_dir(1) / "data" / "meta.properties").read_text() == meta  # not reformatted
    assert sorted(consume(settings, "durable", len(values))) == sorted(values)
    assert node.stop() is True


def test_stale_pid_file_never_kills_a_stranger(tmp_path: Path) -> None:
    cluster = KafkaCluster(kafka_settings(tmp_path / "state"))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stale = {"engine": "kafka", "nodes": {"1": {"pid": stranger.pid, "started_at": 0}}}
        cluster.pid_file.write_text(json.dumps(stale))
        status = cluster.status()
        assert not status.running and status.nodes[0].detail == "not running"
        with pytest.raises(BrokerError, match="not running"):
            cluster.kill_node(1)
        assert cluster.stop() is False
        assert stranger.poll() is None  # still alive
    finally:
        stranger.kill()
        stranger.wait()


def test_missing_java_is_a_setup_error(tmp_path: Path, only_path: Path) -> None:
    cluster = KafkaCluster(kafka_settings(tmp_path / "state"))
    with pytest.raises(KafkaSetupError, match=r"no `java` is on PATH.*openjdk-17-jre-headless"):
        cluster.start()
    assert KafkaSetupError.exit_code == 4  # "install something first"


def test_old_java_is_a_setup_error(tmp_path: Path, only_path: Path) -> None:
    fake_java(only_path, 'java version "1.8.0_392"')
    cluster = KafkaCluster(kafka_settings(tmp_path / "state"))
    with pytest.raises(KafkaSetupError, match=r"needs Java 17 or newer; .* is Java 8"):
        cluster.start()


def test_missing_maven_is_a_setup_error(tmp_path: Path, only_path: Path) -> None:
    fake_java(only_path)
    cluster = KafkaCluster(kafka_settings(tmp_path / "state", cache_dir=tmp_path / "cache"))
    with pytest.raises(KafkaSetupError, match=r"no `mvn` is on PATH.*apt-get install maven"):
        cluster.start()
    assert not (tmp_path / "cache" / "4.4.0").exists()


def test_cached_jars_are_reused_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_kafka()
    broker = load_settings().broker
    first = resolve_jars(broker.kafka_version, broker.cache_dir)  # may really fetch, once
    assert (first / f"kafka_2.13-{broker.kafka_version}.jar").is_file()

    def no_subprocess(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a cached version must not run Maven")

    monkeypatch.setattr("streams.broker.jars.subprocess.run", no_subprocess)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn either
    messages: list[str] = []
    assert resolve_jars(broker.kafka_version, broker.cache_dir, messages.append) == first
    assert messages == []  # and no "fetching" line


FAKE_MVN = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;;
    -Dkafka.version=*) version="${arg#-Dkafka.version=}" ;;
  esac
done
/bin/mkdir -p "$out"  # absolute: PATH holds only the fakes
echo jar > "$out/slf4j-api-1.7.36.jar"
"""


def test_fetch_fills_the_cache_only_when_complete(tmp_path: Path, only_path: Path) -> None:
    cache = tmp_path / "cache"
    script(only_path, "mvn", FAKE_MVN + 'echo "[ERROR] Could not resolve kafka_2.13"; exit 1\n')
    with pytest.raises(KafkaSetupError, match=r"exit 1(.|\n)*Could not resolve kafka_2.13"):
        resolve_jars("4.4.0", cache)
    assert list(cache.iterdir()) == []  # no version folder, no temporary folder left

    script(only_path, "mvn", FAKE_MVN + 'echo jar > "$out/kafka_2.13-$version.jar"\n')
    messages: list[str] = []
    jars = resolve_jars("4.4.0", cache, messages.append)
    assert jars == cache / "4.4.0" and [p.name for p in cache.iterdir()] == ["4.4.0"]
    assert json.loads((jars / MARKER).read_text())["jars"] == [
        "kafka_2.13-4.4.0.jar",
        "slf4j-api-1.7.36.jar",
    ]
    assert messages == [
        "fetching Apache Kafka 4.4.0 jars from Maven Central (first run only, ~45 MB)..."
    ]


def test_node_count_must_match_the_state_dir(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path / "state")
    ClusterLayout.create(3, "127.0.0.1", 9092).save(tmp_path / "state" / "cluster.json")
    with pytest.raises(BrokerError, match="holds a 3-node Kafka cluster, not 1"):
        KafkaCluster(settings).start()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    cluster = KafkaCluster(kafka_settings(tmp_path / "state"))
    with socket.socket() as squatter:
        squatter.bind((cluster.host, cluster.port))
        squatter.listen()
        with pytest.raises(BrokerError, match=r"client port of Kafka node 1.*already in use"):
            cluster.start()
    assert not cluster.pid_file.exists()


def test_a_node_that_dies_during_start_reports_its_log(tmp_path: Path, only_path: Path) -> None:
    fake_java(only_path)
    cache = complete_cache(tmp_path / "cache")
    cluster = KafkaCluster(kafka_settings(tmp_path / "state", cache_dir=cache))
    with pytest.raises(BrokerError, match=r"node 1 exited with code 3(.|\n)*boom"):
        cluster.start()
    assert not cluster.pid_file.exists()
    assert "auto.create.topics.enable=false" in cluster.node_dir(1).joinpath(
        "server.properties"
    ).read_text(encoding="utf-8")


def test_private_settings_plan_every_node(tmp_path: Path) -> None:
    settings = private_broker_settings(load_settings(), tmp_path, engine="kafka", nodes=3)
    assert settings.broker.engine == "kafka" and settings.kafka.profile == "standard"
    assert settings.topics.replication == 3
    ports = [int(hostport.rsplit(":", 1)[1]) for hostport in settings.kafka.bootstrap.split(",")]
    assert ports[0] == settings.broker.port and len(set(ports)) == 3
    cluster = local_broker(settings)
    assert isinstance(cluster, KafkaCluster) and cluster.bootstrap == settings.kafka.bootstrap
    assert cluster.node_bootstrap(3) == f"127.0.0.1:{ports[2]}"
    assert recorded_engines(tmp_path) == []  # planned, not started
    embedded = private_broker_settings(load_settings(), tmp_path / "tansu")
    assert embedded.kafka.profile == "embedded" and embedded.broker.engine == "embedded"
    assert isinstance(local_broker(embedded), EmbeddedBroker)
    with pytest.raises(ValueError, match="single node"):
        private_broker_settings(load_settings(), tmp_path, engine="embedded", nodes=3)
