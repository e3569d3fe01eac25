"""Read what workers emit, and run them (streams.worker.supervisor) for the tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.config import Settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import make_consumer, message_count, watermarks
from streams.tail import scan
from streams.worker.supervisor import WorkerProcess

__all__ = [
    "WorkerProcess",
    "committed_offsets",
    "count",
    "for_test_workers",
    "outcomes",
    "read_topic",
    "running",
    "wait_consumed",
    "wait_for",
    "wait_for_outcomes",
]


def for_test_workers(settings: Settings, **worker: object) -> Settings:
    """``settings`` with a consumer group of the test's own and short batch waits."""
    values = {"app_id": f"darkroom-test-{uuid.uuid4().hex[:8]}", "batch_wait_s": 0.1, **worker}
    return settings.model_copy(update={"worker": settings.worker.model_copy(update=values)})


def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every committed event on ``topic`` now (decoded), with its key, partition and bytes."""
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    out = []
    for message in scan(settings, codec, topic):
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


def wait_for(
    check: Callable[[], Any],
    timeout_s: float,
    what: str,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; on a timeout, say what ``detail``
    returns then (what a failure needs explaining by)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    seen = f"; then: {detail()!r}" if detail is not None else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}{seen})")


COORDINATOR_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The worker group's committed offset of each uploads partition (-1001: none yet).

    A Kafka broker that has just started answers NOT_COORDINATOR for a while (its offsets
    topic is still loading): retried for up to 30 s, as a consumer would. librdkafka does not
    mark that error retriable when it comes from ``committed`` (seen failing a CI run), so the
    coordinator's errors are named here.
    """
    topic = settings.topics.uploaded
    consumer = make_consumer(settings, group_id=settings.worker.app_id)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        deadline = time.monotonic() + 30
        while True:
            try:
                found = consumer.committed(wanted, timeout=10)
                return {tp.partition: tp.offset for tp in found}
            except KafkaException as exc:
                error = exc.args[0]
                waiting = error.retriable() or error.code() in COORDINATOR_NOT_READY
                if not waiting or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def wait_consumed(settings: Settings, timeout_s: float = 60.0) -> None:
    """Until the workers' group has committed every message now on the uploads topic.

    Workers commit an upload only after its output is acknowledged and its tables written, so
    after this returns every output there will ever be for those uploads is on its topic: a
    test can assert that nothing *else* came out, without sleeping and hoping.
    """
    topic = settings.topics.uploaded
    consumer = make_consumer(settings)
    try:

        def behind() -> list[str]:
            lagging = []
            for partition, offset in committed_offsets(settings).items():
                _low, end = watermarks(consumer, TopicPartition(topic, partition), 10.0)
                if end > 0 and offset < end:
                    lagging.append(f"{partition}: {offset} < {end}")
            return lagging

        wait_for(lambda: not behind(), timeout_s, f"the group to commit all of {topic}")
    finally:
        consumer.close()


def outcomes(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(enriched events, dead letters) so far."""
    return read_topic(settings, settings.topics.enriched), read_topic(
        settings, settings.topics.failed
    )


def wait_for_outcomes(
    settings: Settings, count: int, timeout_s: float = 90.0
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
def running(
    *workers: WorkerProcess, ready: Callable[[WorkerProcess], Any] = WorkerProcess.wait_ready
) -> Any:
    """Start workers, wait until each is ``ready``, stop them (even on failure)."""
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            ready(worker)
        yield workers
    except BaseException:
        # pytest shows a failed test's captured output: the workers' own account of what they did
        for worker in workers:
            print(f"--- {worker.log.name} (last 60 lines) ---\n{worker.tail_log(60)}")
        raise
    finally:
        for worker in workers:
            worker.stop()
