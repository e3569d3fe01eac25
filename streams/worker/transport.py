"""Darkroom's Faust transport: the aiokafka one with a configurable fetch wait and exactly-once
that holds for the outputs too. It registers as the ``darkroom://`` broker scheme through the
``faust.transports`` entry point in pyproject.toml.

Fetch wait: Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. The embedded
broker holds every Fetch for the full wait even when data is there, so with Faust's value each
fetch takes 1.5 s (end-to-end median 822 ms measured). Here it comes from the client profile.

Exactly-once (``processing_guarantee="exactly_once"``): Faust runs one transactional producer
per input partition and commits each partition's offsets in that partition's transaction. But
its ``TransactionManager.send`` picks the transaction from the *destination* partition as the
consumer's metadata knows it; for a topic the worker does not consume (photos.enriched,
photos.failed) that is unknown, so the record goes out through the plain producer, outside any
transaction (measured on Kafka 4.4: ``transactional_id=None`` for both output topics; upstream:
faust-streaming/faust#177 "Producer is sending messages outside a transaction", #517 "Duplicate
messages despite exactly_once"). After a ``kill -9`` the re-run batch then emitted its outputs a
second time, visible to ``read_committed`` readers. Two changes make it exact:

* an output goes into the transaction of the partition its *upload* came from (the current
  event's), the one that commits that upload's offset; a send with no current event is refused;
* Faust commits on a timer, which could land between a batch's sends and its acknowledgements and
  commit the outputs without the offsets. ``BatchGate`` lets a commit run only between batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faust.exceptions import ProducerSendError
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as driver


class BatchGate:
    """A batch (sends to acknowledgements) and an offset commit never overlap."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the gate for the duration of a batch, or of a commit."""
        async with self._lock:
            yield


def batch_gate(app: Any) -> BatchGate:
    """The app's gate (created on first use, inside the worker's event loop)."""
    gate: BatchGate | None = getattr(app, "_darkroom_batch_gate", None)
    if gate is None:
        gate = app._darkroom_batch_gate = BatchGate()
    return gate


class _TransactionManager(TransactionManager):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        if self.consumer.key_partition(topic, key, partition) is not None:
            # a co-partitioned topic (a table's changelog): Faust's own routing is right
            return await super().send(topic, key, value, partition, timestamp, headers)
        event = current_event()
        if event is None:
            raise ProducerSendError(
                f"exactly_once: a record for {topic} was sent outside any upload's "
                "transaction (no current event)"
            )
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        return await self.producer.send(
            topic,
            key,
            value,
            partition,
            timestamp,
            headers,
            transactional_id=f"{self.app.conf.id}-{group}-{source.partition}",
        )


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", 1500))
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        async with batch_gate(self.app).held():
            committed: bool = await super().commit(topics, start_new_transaction)
            return committed


class Transport(driver.Transport):
    """aiokafka transport: configurable fetch wait, outputs inside their upload's transaction."""

    Consumer = _Consumer
    TransactionManager = _TransactionManager
