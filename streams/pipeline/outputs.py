"""Build the events a batch emits: PhotoEnriched for a result, PhotoFailed for a dead letter,
PhotoRemoved for a request to forget.

A dead letter carries its original message so it can be re-driven byte for byte; one near the
producer's size limit cannot fit inside another message whole, so ``fit_dead_letter`` keeps the
original's size, SHA-256 and source position and as many leading bytes as fit.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from streams.contracts import headers
from streams.contracts.codec import Codec
from streams.contracts.events import photo_removed, utc_now
from streams.contracts.schemas import EventType, SchemaRepository
from streams.engine.results import Enriched, Failed
from streams.engine.variants import VariantRun
from streams.errors import FailureReason
from streams.imaging.thumbnails import THUMBNAILER
from streams.logs import get_logger

log = get_logger("darkroom.pipeline")

# Room left in every record for what the Avro body does not count: Kafka's record and batch
# framing (about 70 bytes), the key, and the headers a replay adds (about 100 bytes).
RECORD_OVERHEAD_BYTES = 1024
# An error message longer than this is cut: it is for a person, and it must leave room.
DETAIL_MAX_CHARS = 2000
# Refusals of an upload whose photo or user was forgotten: their dead letters keep no bytes.
FORGOTTEN = frozenset({FailureReason.USER_ERASED, FailureReason.PHOTO_DELETED})


# uuid5 namespace of outcome ids (PhotoEnriched / PhotoFailed event_id, schema version 4)
OUTCOME_IDS = uuid.UUID("5d1f0e0c-6b4e-4f53-9a43-2f1c3d7e9b10")


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
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


@dataclass(frozen=True)
class Attempt:
    """Which attempt at a photo a message is: its number (1, then one more for each attempt
    that is not a redelivery of an earlier one) and its key, the replay that wrote the message
    ("" for the original upload; a redelivery has the same key, a re-drive a new one)."""

    number: int = 1
    key: str = ""

    @classmethod
    def of(cls, message: RawMessage, number: int = 1) -> Attempt:
        """Attempt ``number`` at ``message``, keyed by the replay header it carries."""
        replay = message.header(headers.REPLAY_ID)
        return cls(number, replay.decode(errors="replace") if replay else "")


def outcome_id(answers: str, attempt: Attempt, kind: Literal["enriched", "failed"]) -> str:
    """The id of the ``kind`` outcome of ``attempt`` at the upload ``answers`` (its event_id, or
    the message's position when it never decoded): the same for every redelivery of that
    attempt, different for another attempt and for the other kind of outcome."""
    name = f"{answers}\n{attempt.key}\n{attempt.number}\n{kind}"
    return str(uuid.uuid5(OUTCOME_IDS, name))


def position(message: RawMessage) -> str:
    """'topic/partition/offset' of ``message``."""
    return f"{message.topic}/{message.partition}/{message.offset}"


class OutputBuilder:
    """Fills every field of the output schemas (null where an enrichment did not run)."""

    def __init__(self, schemas: SchemaRepository) -> None:
        raw = schemas.latest(EventType.PHOTO_ENRICHED).raw
        self._nullable = [
            f["name"] for f in raw["fields"] if "default" in f and f["default"] is None
        ]
        shadow = schemas.latest(EventType.SHADOW_RESULT).raw
        (variant_fields,) = [f for f in shadow["fields"] if f["name"] == "variant_fields"]
        self._variant_fields = [f["name"] for f in variant_fields["type"]["fields"]]
        self.worker = worker_name()

    def enriched(
        self,
        upload: dict[str, Any],
        result: Enriched,
        duplicate_of: dict[str, Any] | None,
        person_ids: list[str | None] | None = None,
        best_shot: dict[str, Any] | None = None,
        attempt: Attempt = Attempt(),
        assets: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The PhotoEnriched record for ``upload``; ``person_ids``: per face, the person it
        belongs to (streams/pipeline/people.py), None for a face that is not one yet;
        ``best_shot``: its place in its duplicate group (streams/pipeline/bestshot.py);
        ``assets``: its stored thumbnails (streams/pipeline/assets.py)."""
        record: dict[str, Any] = dict.fromkeys(self._nullable)
        record.update(result.fields)
        produced_by = dict(result.produced_by)
        if duplicate_of is not None:
            produced_by["duplicate_of"] = {"name": "darkroom-dedup", "version": "2"}
        if best_shot is not None:
            produced_by["best_shot"] = {"name": "darkroom-bestshot", "version": "1"}
        if assets is not None and assets["items"]:
            produced_by["assets"] = dict(THUMBNAILER)
        if person_ids is not None and record.get("faces"):
            faces = record["faces"]
            record["faces"] = [
                {**f, "person_id": p} for f, p in zip(faces, person_ids, strict=True)
            ]
            if any(person_ids):
                produced_by["faces.person_id"] = {"name": "darkroom-people", "version": "1"}
        record.update(
            event_id=outcome_id(upload["event_id"], attempt, "enriched"),
            upload_event_id=upload["event_id"],
            attempt=attempt.number,
            photo_id=upload["photo_id"],
            user_id=upload["user_id"],
            uploaded_at=upload["uploaded_at"],
            enriched_at=utc_now(),
            processing_ms=result.processing_ms,
            trace_id=upload.get("trace_id"),
            worker=self.worker,
            duplicate_of=duplicate_of,
            best_shot=best_shot,
            assets=assets,
            produced_by=produced_by,
            timings_ms=result.timings_ms,
        )
        return record

    def shadow(
        self, upload: dict[str, Any], run: VariantRun, *, with_fields: bool = True
    ) -> dict[str, Any]:
        """The ShadowResult record of one variant's run on ``upload``'s photo (``with_fields``
        False: the variant's fields left out, for a record that would not fit a message)."""
        fields = (run.fields or {}) if with_fields else {}
        return {
            "event_id": upload["event_id"],
            "photo_id": upload["photo_id"],
            "user_id": upload["user_id"],
            "recorded_at": utc_now(),
            "worker": self.worker,
            "mode": run.mode,
            "task": run.task.value,
            "production": run.production,
            "variant": run.model,
            "production_ms": run.production_ms,
            "production_batch": run.production_batch,
            "variant_ms": run.variant_ms,
            "variant_batch": run.variant_batch,
            "agreement": run.figures,
            "variant_fields": {name: fields.get(name) for name in self._variant_fields},
            "error": run.error
            if with_fields
            else "variant_fields left out: the record did not fit a message",
            "trace_id": upload.get("trace_id"),
        }

    def failed(
        self,
        message: RawMessage,
        failed: Failed,
        upload: dict[str, Any] | None,
        attempt: Attempt = Attempt(),
    ) -> dict[str, Any]:
        """The PhotoFailed record: why, where, and the original message byte for byte; none
        of it for an upload refused because its photo or user was forgotten (its bytes are
        what was to be forgotten; its size and SHA-256 still identify it)."""
        answers = upload["event_id"] if upload else position(message)
        forgotten = failed.reason in FORGOTTEN
        return {
            "reason": failed.reason,
            "stage": failed.stage,
            "detail": failed.detail[:DETAIL_MAX_CHARS],
            "worker": self.worker,
            "failed_at": utc_now(),
            "event_id": outcome_id(answers, attempt, "failed"),
            "upload_event_id": upload["event_id"] if upload else None,
            "attempt": attempt.number,
            "photo_id": upload["photo_id"] if upload else None,
            "user_id": upload["user_id"] if upload else None,
            "source": {
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
            },
            "original_key": message.key,
            "original_value": b"" if forgotten else message.value,
            "original_decoded": upload is not None,
            "original_size": len(message.value),
            "original_sha256": hashlib.sha256(message.value).hexdigest(),
            "original_truncated": forgotten,
        }

    def removed(self, request: dict[str, Any]) -> dict[str, Any]:
        """The PhotoRemoved that answers a PhotoDeleted or UserErased ``request``."""
        return photo_removed(request, worker=self.worker)


def encode_shadow(
    codec: Codec, builder: OutputBuilder, upload: dict[str, Any], run: VariantRun, budget: int
) -> bytes:
    """The ShadowResult of ``run``, within ``budget``: one that is too large goes without the
    variant's fields (its figures and times, what the report reads, always fit)."""
    value = codec.encode(EventType.SHADOW_RESULT, builder.shadow(upload, run))
    if len(value) > budget:
        log.warning("shadow result too large, fields left out", variant=run.variant)
        value = codec.encode(
            EventType.SHADOW_RESULT, builder.shadow(upload, run, with_fields=False)
        )
    return value


def body_budget(max_message_bytes: int, key: bytes | None) -> int:
    """The largest encoded value that still fits a record of ``max_message_bytes``."""
    return max_message_bytes - RECORD_OVERHEAD_BYTES - len(key or b"")


def fit_dead_letter(record: dict[str, Any], encoded_size: int, budget: int) -> dict[str, Any]:
    """``record`` with ``original_value`` cut so that its encoding shrinks by the excess.

    ``encoded_size`` is the size of ``record`` encoded as it is. Avro writes bytes as a length
    prefix and the bytes, so cutting n bytes shrinks the body by n (or by n plus a byte or two
    of the prefix): the result never exceeds ``budget`` (the caller checks once more).
    """
    excess = encoded_size - budget
    original: bytes = record["original_value"]
    if excess <= 0:
        return record
    if excess <= len(original):
        keep = len(original) - excess
        return {**record, "original_value": original[:keep], "original_truncated": True}
    # Even without its original the record is too large: the upload's own ids are huge (a
    # hostile event). Its size, SHA-256 and source position still identify it.
    return {
        **record,
        "upload_event_id": None,
        "photo_id": None,
        "user_id": None,
        "detail": record["detail"][:DETAIL_MAX_CHARS],
        "original_value": b"",
        "original_truncated": True,
    }
