"""A batch that raises: transient errors stop the caller, anything else is retried message by
message and the message that still raises becomes its own INTERNAL_ERROR dead letter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.engine import Enricher
from streams.errors import FailureReason, UnreachableError
from streams.pipeline import DuplicatePolicy, DuplicateSearch
from streams.pipeline.memory import MemoryStore
from streams.pipeline.outputs import RawMessage
from streams.pipeline.poison import alone, is_transient
from streams.pipeline.stages import stage_of
from tests.pipeline.test_batch import decoded, make_pipeline, upload_bytes


class Raising(DuplicateSearch):
    """The real duplicate search, which raises ``error`` when it meets photo "poison"."""

    def __init__(self, error: Exception) -> None:
        super().__init__(MemoryStore(), DuplicatePolicy(10, 0.75, 100))
        self.error = error

    def search(self, photos: Any) -> Any:
        if any(searched[1] == "poison" for searched in photos):
            raise self.error
        return super().search(photos)


def message(photo_id: str, offset: int) -> RawMessage:
    return RawMessage("photos.uploaded", 0, offset, b"u1", upload_bytes(photo_id=photo_id))


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ValueError("matmul: size 512 is different from 1280"), False),
        (KeyError("faces"), False),
        (UnreachableError("Kafka at 127.0.0.1:9092 did not answer"), True),
        (TimeoutError(), True),
        (MemoryError(), True),
        (KafkaException(KafkaError(KafkaError._TRANSPORT)), True),
        (asyncio.CancelledError(), True),
    ],
)
def test_what_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_message_that_makes_a_step_raise_becomes_its_own_dead_letter(
    enricher: Enricher, tmp_path: Path
) -> None:
    pipeline = make_pipeline(enricher, tmp_path, duplicates=Raising(ValueError("size 512")))
    batch = [message("p1", 0), message("poison", 1), message("p2", 2)]
    with pytest.raises(ValueError) as raised:
        pipeline.run(batch)  # the batch as a whole cannot finish
    assert stage_of(raised.value) == "duplicates"

    photos = [alone(pipeline, one).photos[0] for one in batch]
    assert [p.topic for p in photos] == ["enriched", "failed", "enriched"]
    dead = decoded(photos[1])
    assert dead["reason"] == FailureReason.INTERNAL_ERROR
    assert (dead["stage"], dead["detail"]) == ("duplicates", "ValueError: size 512")
    assert dead["photo_id"] == "poison"
    assert dead["original_value"] == batch[1].value  # re-drivable once the bug is fixed
    assert dead["source"]["offset"] == 1


def test_a_transient_error_is_not_turned_into_a_dead_letter(
    enricher: Enricher, tmp_path: Path
) -> None:
    away = UnreachableError("the store did not answer")
    pipeline = make_pipeline(enricher, tmp_path, duplicates=Raising(away))
    with pytest.raises(UnreachableError):
        alone(pipeline, message("poison", 0))
