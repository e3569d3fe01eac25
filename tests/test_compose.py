"""docker-compose.yml runs the Kafka that `darkroom broker start --engine kafka` runs.

The file is hand-written; this test holds it to the one source of truth for the broker's
properties (streams/broker/kafka_config.py) and to the default Kafka version and heap.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from streams.broker.kafka_config import (
    BROKER_PROPERTIES,
    ClusterLayout,
    node_properties,
    replication_properties,
)
from streams.config import ENV_PREFIX, BrokerSettings, Settings
from tests.tools_required import require_tool

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
# Where the container differs from a local node on purpose: its network (listeners reachable by
# the other containers and the host), its id, and the heap, which the image takes as a variable.
CONTAINER_OWN = {
    "KAFKA_NODE_ID",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
    "KAFKA_HEAP_OPTS",
}


def env_name(prop: str) -> str:
    """The apache/kafka image's variable for a property: '_' -> '__', '-' -> '___', '.' -> '_'."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def kafka_env() -> dict[str, str]:
    environment = compose()["services"]["kafka"]["environment"]
    return {str(k): str(v) for k, v in environment.items()}


def test_images_are_the_default_kafka_version() -> None:
    version = BrokerSettings().kafka_version
    services = compose()["services"]
    kafka_images = {s["image"] for s in services.values() if s["image"].startswith("apache/")}
    assert kafka_images == {f"apache/kafka:{version}"}


def test_broker_properties_are_the_local_nodes() -> None:
    expected = {
        env_name(k): v for k, v in {**replication_properties(1), **BROKER_PROPERTIES}.items()
    }
    layout = ClusterLayout("x", 1, {}, {1: 9093})
    local = node_properties(1, layout, "127.0.0.1", 9092, Path("/data"))
    for shared in ("process.roles", "controller.listener.names", "inter.broker.listener.name"):
        expected[env_name(shared)] = local[shared]
    env = kafka_env()
    assert {k: v for k, v in env.items() if k not in CONTAINER_OWN} == expected
    heap = BrokerSettings().heap_mb
    assert env["KAFKA_HEAP_OPTS"] == f"-Xmx{heap}m -Xms{heap}m"


def test_env_names_follow_the_image_rules() -> None:
    assert env_name("log.cleaner.dedupe.buffer.size") == "KAFKA_LOG_CLEANER_DEDUPE_BUFFER_SIZE"
    assert env_name("a_b-c.d") == "KAFKA_A__B___C_D"


def test_docker_compose_accepts_the_file() -> None:
    binary = require_tool("docker-compose", "docker-compose")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_settings_it_documents_exist() -> None:
    """The header's DARKROOM_* lines are settings a worker reads, and the bucket they name is
    the one the `buckets` job creates."""
    documented = dict(re.findall(r"(DARKROOM_\w+)=(\S+)", COMPOSE.read_text(encoding="utf-8")))
    known = {
        f"{ENV_PREFIX}{section}_{field}".upper()
        for section, fields in _fields()
        for field in fields
    }
    assert set(documented) <= known
    buckets = json.loads(documented["DARKROOM_BLOBS_S3_BUCKETS"].strip("'"))
    job = " ".join(compose()["services"]["buckets"]["command"])
    assert all(f"local/{bucket}" in job for bucket in buckets)


def _fields() -> list[tuple[str, list[str]]]:
    return [(name, list(type(section).model_fields)) for name, section in Settings()]
