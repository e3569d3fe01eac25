"""Read what workers emit, and run them (streams.worker.supervisor) for the tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from streams.config import Settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import message_count
from streams.tail import tail
from streams.worker.supervisor import WorkerProcess

__all__ = [
    "WorkerProcess",
    "count",
    "outcomes",
    "read_topic",
    "running",
    "wait_for",
    "wait_for_outcomes",
]


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
    """Messages on ``topic`` now (watermarks)."""
    return message_count(settings, topic)


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
