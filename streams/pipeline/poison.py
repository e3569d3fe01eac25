"""A batch the pipeline cannot finish: transient, or poisoned by one of its messages?

A batch that raises for a reason that is not transient (a bug meeting one photo's data, not a
broker or a store that is away) would raise again on every restart and stop its partition for
good. Its callers (the worker, `replay --reprocess`) retry such a batch message by message;
``alone`` runs one, and a message that still raises becomes its own INTERNAL_ERROR dead letter
(with the exception's type, message and stage, and the original bytes for a re-drive once the
bug is fixed) while the others go on. A transient error still stops the caller, unacknowledged:
the batch is processed again once the broker, the store or the memory is back.
"""

from __future__ import annotations

from confluent_kafka import KafkaException

from streams.errors import DarkroomError, PhotoError
from streams.logs import get_logger
from streams.pipeline.batch import Pipeline
from streams.pipeline.outputs import RawMessage
from streams.pipeline.photo import Batch
from streams.pipeline.stages import stage_of

log = get_logger("darkroom.pipeline")

# Clients whose errors say "a service is away", whatever their class: Kafka's (aiokafka, and
# Faust over it) and the RocksDB behind the tables. confluent_kafka's classes live in its C
# module ("cimpl"), so they are named by class.
_SERVICE_MODULES = ("aiokafka", "faust", "mode", "rocksdict")


def is_transient(error: BaseException) -> bool:
    """True when ``error`` says "try this batch again later" rather than "this input breaks
    the code": a cancellation or exit, memory, I/O and timeouts, Darkroom's own errors other
    than a photo's (unreachable, setup, rights), and any error of a Kafka or RocksDB client."""
    if not isinstance(error, Exception):
        return True  # CancelledError, KeyboardInterrupt, SystemExit
    if isinstance(error, PhotoError):
        return False
    if isinstance(error, DarkroomError | MemoryError | OSError | KafkaException):
        return True  # OSError covers TimeoutError and ConnectionError
    return type(error).__module__.split(".")[0] in _SERVICE_MODULES


def alone(pipeline: Pipeline, message: RawMessage) -> Batch:
    """``message`` through ``pipeline`` as a batch of its own; if the pipeline raises on it for
    a reason that is not transient, its INTERNAL_ERROR dead letter instead."""
    try:
        return pipeline.run([message])
    except Exception as error:
        if is_transient(error):
            raise
        return quarantined(pipeline, message, error)


def quarantined(pipeline: Pipeline, message: RawMessage, error: Exception) -> Batch:
    """The dead letter of ``message`` that made the pipeline raise ``error`` (logged once)."""
    log.error(
        "message makes the pipeline raise; it becomes an INTERNAL_ERROR dead letter",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        stage=stage_of(error),
        exc_info=error,
    )
    return pipeline.quarantine(message, error)
