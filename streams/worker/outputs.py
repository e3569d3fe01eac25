"""Build the events the worker emits: PhotoEnriched for a result, PhotoFailed for a dead letter."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from streams.contracts.events import utc_now
from streams.contracts.schemas import EventType, SchemaRepository
from streams.engine.results import Enriched


def worker_name() -> str:
    """host:pid, as dead letters and enriched events name their worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class RawMessage:
    """An input message exactly as consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class OutputBuilder:
    """Fills every field of the output schemas (null where an enrichment did not run)."""

    def __init__(self, schemas: SchemaRepository) -> None:
        raw = schemas.latest(EventType.PHOTO_ENRICHED).raw
        self._nullable = [
            f["name"] for f in raw["fields"] if "default" in f and f["default"] is None
        ]
        self.worker = worker_name()

    def enriched(
        self, upload: dict[str, Any], result: Enriched, duplicate_of: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The PhotoEnriched record for ``upload``."""
        record: dict[str, Any] = dict.fromkeys(self._nullable)
        record.update(result.fields)
        produced_by = dict(result.produced_by)
        if duplicate_of is not None:
            produced_by["duplicate_of"] = {"name": "darkroom-dedup", "version": "1"}
        record.update(
            event_id=upload["event_id"],
            photo_id=upload["photo_id"],
            user_id=upload["user_id"],
            uploaded_at=upload["uploaded_at"],
            enriched_at=utc_now(),
            processing_ms=result.processing_ms,
            trace_id=upload.get("trace_id"),
            worker=self.worker,
            duplicate_of=duplicate_of,
            produced_by=produced_by,
            timings_ms=result.timings_ms,
        )
        return record

    def failed(
        self,
        message: RawMessage,
        reason: str,
        stage: str,
        detail: str,
        upload: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The PhotoFailed record: why, where, and the original message byte for byte."""
        return {
            "reason": reason,
            "stage": stage,
            "detail": detail,
            "worker": self.worker,
            "failed_at": utc_now(),
            "event_id": upload["event_id"] if upload else None,
            "photo_id": upload["photo_id"] if upload else None,
            "user_id": upload["user_id"] if upload else None,
            "source": {
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
            },
            "original_key": message.key,
            "original_value": message.value,
            "original_decoded": upload is not None,
        }
