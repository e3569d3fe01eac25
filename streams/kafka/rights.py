"""Checks that a command has the rights it needs, made before it starts, so that a missing ACL
is one line naming it within seconds instead of a hang, a traceback or "does not exist".

Measured on Apache Kafka 4.4 with the StandardAuthorizer: a topic the principal may not
DESCRIBE is simply absent from a full Metadata answer (hence the old "does not exist"); asked for
by name it comes back with TOPIC_AUTHORIZATION_FAILED. A worker without READ on its group joined
nothing and logged nothing for 71 s: OffsetFetch for the group answers GROUP_AUTHORIZATION_FAILED
at once. A transactional producer without its TRANSACTIONAL_ID right fails InitProducerId
(Faust then died with "No transaction producer found", the cause only in a warning).
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError
from confluent_kafka.admin._metadata import ClusterMetadata

from streams.config import Settings
from streams.errors import UsageError
from streams.kafka.clients import make_consumer
from streams.kafka.refusals import missing_right
from streams.kafka.security import KafkaSecurity

CHECK_TIMEOUT_S = 10.0


class TopicMissingError(UsageError):
    """A topic the command needs does not exist."""


def require_topics(
    settings: Settings, metadata: ClusterMetadata, topics: list[str], hint: str = ""
) -> None:
    """Every topic in ``topics`` exists and may be described; else the first that does not, as
    a missing right (TOPIC_AUTHORIZATION_FAILED) or a missing topic."""
    absent = [t for t in topics if t not in metadata.topics]
    if not absent:
        return
    consumer = make_consumer(settings)
    try:
        for topic in absent:
            found = consumer.list_topics(topic, timeout=CHECK_TIMEOUT_S).topics.get(topic)
            error = None if found is None else found.error
            if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise missing_right(settings, "DESCRIBE", "topic", topic)
    finally:
        consumer.close()
    names = ", ".join(repr(t) for t in absent)
    verb = "does not exist" if len(absent) == 1 else "do not exist"
    raise TopicMissingError(
        f"topic{'s' if len(absent) > 1 else ''} {names} {verb} on {settings.kafka.bootstrap}"
        + (f" ({hint})" if hint else "")
    )


def require_group(settings: Settings, group: str, topic: str) -> None:
    """The principal may use consumer group ``group``: its committed offset for ``topic`` is
    asked, which changes nothing, through aiokafka and the worker's own credentials (the client
    that will join the group). librdkafka's admin request for the same crashed its process
    (SIGSEGV in rd_kafka_cgrp_op) now and then in the test suite."""
    asyncio.run(_committed(settings, group, topic))


async def _committed(settings: Settings, group: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioPartition
    from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap.split(","),
        client_id=settings.kafka.client_id,
        group_id=group,
        enable_auto_commit=False,
        **_aiokafka_auth(settings),
    )
    try:
        await asyncio.wait_for(consumer.start(), CHECK_TIMEOUT_S)
        await asyncio.wait_for(consumer.committed(AioPartition(topic, 0)), CHECK_TIMEOUT_S)
    except GroupAuthorizationFailedError:
        raise missing_right(settings, "READ", "group", group) from None
    except TopicAuthorizationFailedError:
        raise missing_right(settings, "DESCRIBE", "topic", topic) from None
    finally:
        await consumer.stop()


def _aiokafka_auth(settings: Settings) -> dict[str, Any]:
    """aiokafka's security options, translated by Faust as for the worker's clients."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    credentials = KafkaSecurity.from_settings(settings.kafka).faust_credentials()
    return dict(credentials_to_aiokafka_auth(credentials))


def require_transactions(settings: Settings, transactional_id: str) -> None:
    """The principal may use ``transactional_id`` (WRITE on that transactional id): a
    transaction is begun and aborted, through aiokafka and the same credentials the worker's
    transactional producers get, so the check also proves that client can log in."""
    asyncio.run(_begin_and_abort(settings, transactional_id))


async def _begin_and_abort(settings: Settings, transactional_id: str) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import TransactionalIdAuthorizationFailed

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap.split(","),
        client_id=settings.kafka.client_id,
        transactional_id=transactional_id,
        **_aiokafka_auth(settings),
    )
    try:
        await asyncio.wait_for(producer.start(), CHECK_TIMEOUT_S)
        await asyncio.wait_for(producer.begin_transaction(), CHECK_TIMEOUT_S)
        await producer.abort_transaction()
    except TransactionalIdAuthorizationFailed:
        raise missing_right(settings, "WRITE", "transactional-id", transactional_id) from None
    finally:
        await producer.stop()
