"""Run real `darkroom worker` processes against the test broker, and read what they emit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from streams.broker import free_port
from streams.config import Settings, settings_env
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import make_consumer
from streams.tail import tail

READY_TIMEOUT_S = 90.0


class WorkerProcess:
    """One `darkroom worker` in its own process, data folder and web port."""

    def __init__(self, settings: Settings, folder: Path, name: str) -> None:
        worker = settings.worker.model_copy(
            update={"data_dir": folder / name / "data", "web_port": free_port()}
        )
        self.settings = settings.model_copy(update={"worker": worker})
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.worker.web_port}"

    def start(self) -> WorkerProcess:
        env = {**os.environ, **settings_env(self.settings), "DARKROOM_LOG_FORMAT": "json"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from streams.cli.app import main; main()", "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Until /healthz says ok with at least one partition; the health body."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}: {self.tail_log()}")
            status, body = self.get("/healthz")
            if status == 200 and body.get("partitions"):
                return body
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout_s} s: {self.tail_log()}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET a JSON page; (0, {}) when nothing answers yet."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, {}

    def metrics(self) -> str:
        """The Prometheus exposition text."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def kill(self) -> None:
        """kill -9: no goodbye, no commit."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not leave."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def tail_log(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every event on ``topic`` now (decoded), with its key; stops after 1 s of quiet."""
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    out = []
    for message in tail(settings, codec, topic, from_beginning=True, idle_timeout_s=1.0):
        assert message.event is not None, message.error
        out.append(
            {
                **message.event.record,
                "_key": message.key,
                "_partition": message.partition,
                "_value": message.raw,
            }
        )
    return out


def count(settings: Settings, topic: str) -> int:
    """Messages on ``topic`` now, from the partitions' watermarks (milliseconds, no reading)."""
    consumer = make_consumer(settings)
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5) for p in partitions
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in marks)


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def outcomes(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(enriched events, dead letters) so far."""
    return read_topic(settings, settings.topics.enriched), read_topic(
        settings, settings.topics.failed
    )


def wait_for_outcomes(
    settings: Settings, count: int, timeout_s: float = 120.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Until at least ``count`` outcomes exist in total."""

    def enough() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        enriched, failed = outcomes(settings)
        return (enriched, failed) if len(enriched) + len(failed) >= count else None

    result: tuple[list[dict[str, Any]], list[dict[str, Any]]] = wait_for(
        enough, timeout_s, f"{count} outcomes"
    )
    return result


@contextlib.contextmanager
def running(*workers: WorkerProcess) -> Any:
    """Start workers, wait until each is ready, stop them (even on failure)."""
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
