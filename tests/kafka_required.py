"""Whether this machine can run the local Apache Kafka, for tests that need it.

``require_kafka()`` skips the calling test (or fixture) with the reason when Java 17+ is missing,
or when the jars are not cached yet and Maven is missing; under CI (``CI=true``) it fails
instead, so a CI machine without them cannot pass by skipping.
"""

from __future__ import annotations

import functools
import os
import shutil

import pytest

from streams.broker.jars import KafkaSetupError, cached, java_binary
from streams.config import load_settings


@functools.cache
def kafka_missing() -> str | None:
    """Why the local Kafka cannot run here, or None when it can."""
    try:
        java_binary()
    except KafkaSetupError as exc:
        return str(exc)
    broker = load_settings().broker
    if not cached(broker.cache_dir, broker.kafka_version) and shutil.which("mvn") is None:
        return (
            f"the Apache Kafka {broker.kafka_version} jars are not in {broker.cache_dir} and "
            "no `mvn` is on PATH to fetch them: sudo apt-get install maven"
        )
    return None


def require_kafka() -> None:
    """Skip (or under CI=true, fail) unless Java and Maven (or cached jars) are here."""
    reason = kafka_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the local Kafka cannot run: {reason}")
    pytest.skip(f"local Kafka cannot run: {reason}")
