"""Builders for event records, so every producer fills the same fields the same way."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def utc_now() -> datetime:
    """The current time in UTC, truncated to the millisecond that timestamp-millis keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_utc(moment: datetime) -> str:
    """A time in UTC, ISO-8601 to the millisecond (as Avro's timestamp-millis keeps it), so
    that text order is time order: the worker's lists order by upload time in this form."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def photo_id_for(user_id: str, content_sha256: str) -> str:
    """A stable photo id: the same bytes uploaded by the same user get the same id."""
    digest = hashlib.sha256(f"{user_id}\0{content_sha256}".encode()).hexdigest()
    return f"ph_{digest[:24]}"


def new_upload(
    *,
    photo_id: str,
    user_id: str,
    content_type: str,
    byte_size: int,
    blob: str | bytes,
    content_sha256: str | None = None,
    filename: str | None = None,
    client_metadata: Mapping[str, str] | None = None,
    trace_id: str | None = None,
    uploaded_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A PhotoUploaded record; ``blob`` is a URI string or the bytes inline."""
    blob_field = {"uri": blob} if isinstance(blob, str) else {"data": blob}
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "photo_id": photo_id,
        "user_id": user_id,
        "uploaded_at": uploaded_at or utc_now(),
        "content_type": content_type,
        "byte_size": byte_size,
        "blob": blob_field,
        "content_sha256": content_sha256,
        "filename": filename,
        "client_metadata": dict(client_metadata) if client_metadata is not None else None,
        "trace_id": trace_id,
    }


def new_photo_deleted(
    *,
    user_id: str,
    photo_id: str,
    reason: str,
    requested_at: datetime | None = None,
    trace_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A PhotoDeleted record: forget ``photo_id`` of ``user_id``."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "user_id": user_id,
        "photo_id": photo_id,
        "requested_at": requested_at or utc_now(),
        "reason": reason,
        "trace_id": trace_id,
    }


def new_user_erased(
    *,
    user_id: str,
    reason: str,
    requested_at: datetime | None = None,
    trace_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A UserErased record: forget everything of ``user_id``."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "user_id": user_id,
        "requested_at": requested_at or utc_now(),
        "reason": reason,
        "trace_id": trace_id,
    }


# the namespace of PhotoRemoved ids (uuid5): any fixed UUID, never to change
_REMOVED = uuid.UUID("5b1f0a3e-8c8e-4f4e-9d36-7a2d1c9e0b51")


def photo_removed(
    request: Mapping[str, Any], *, worker: str, removed_at: datetime | None = None
) -> dict[str, Any]:
    """The PhotoRemoved that answers a PhotoDeleted or a UserErased ``request`` (photo_id
    None for an erasure); its event id is the same for every redelivery of the request."""
    photo_id = request.get("photo_id")
    return {
        "event_id": str(uuid.uuid5(_REMOVED, f"{request['event_id']}/{photo_id or ''}")),
        "request_event_id": request["event_id"],
        "user_id": request["user_id"],
        "photo_id": photo_id,
        "reason": request["reason"],
        "requested_at": request["requested_at"],
        "removed_at": removed_at or utc_now(),
        "worker": worker,
        "trace_id": request.get("trace_id"),
    }
