"""Decoded events as JSON lines: what `tail --json` prints and `replay --out` writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.contracts.codec import DecodedEvent


def jsonable(value: Any) -> Any:
    """Event values as JSON types: datetimes as ISO-8601, bytes as {"base64": ...}."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def to_json_line(payload: Mapping[str, Any]) -> str:
    """One compact JSON line."""
    return json.dumps(jsonable(payload), separators=(",", ":"), ensure_ascii=False)


def message_row(
    topic: str, partition: int, offset: int, key: bytes | None, event: DecodedEvent | None
) -> dict[str, Any]:
    """Where a message was and what it says, as `tail --json` and `replay --out` write it."""
    row: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode(errors="replace") if key is not None else None,
    }
    if event is not None:
        return row | {"type": event.event_type.value, "event": event.record}
    return row | {"type": None}
