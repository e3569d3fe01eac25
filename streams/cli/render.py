"""Turn decoded events into JSON lines or short table rows for people."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.contracts.codec import DecodedEvent
from streams.contracts.schemas import EventType

# column name -> width, per event type (the summary a person wants at a glance)
COLUMNS: dict[EventType, list[tuple[str, int]]] = {
    EventType.PHOTO_UPLOADED: [
        ("user", 12),
        ("photo", 27),
        ("uploaded", 19),
        ("type", 10),
        ("bytes", 9),
        ("blob", 44),
    ],
    EventType.PHOTO_ENRICHED: [
        ("user", 12),
        ("photo", 27),
        ("size", 11),
        ("labels", 30),
        ("faces", 5),
        ("nsfw", 5),
        ("text", 24),
        ("duplicate of", 27),
    ],
    EventType.PHOTO_FAILED: [
        ("user", 12),
        ("photo", 27),
        ("reason", 22),
        ("stage", 14),
        ("detail", 60),
    ],
}


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


def summary(event_type: EventType, record: Mapping[str, Any]) -> dict[str, str]:
    """The table cells for one event."""
    cells = {"user": record.get("user_id") or "-", "photo": record.get("photo_id") or "-"}
    if event_type is EventType.PHOTO_UPLOADED:
        blob = record["blob"]
        cells.update(
            uploaded=record["uploaded_at"].strftime("%Y-%m-%d %H:%M:%S"),
            type=record["content_type"].removeprefix("image/"),
            bytes=str(record["byte_size"]),
            blob=f"inline ({len(blob['data'])} B)" if "data" in blob else blob["uri"],
        )
    elif event_type is EventType.PHOTO_ENRICHED:
        labels = record.get("labels") or []
        faces = record.get("faces")
        moderation = record.get("moderation")
        ocr = record.get("ocr")
        duplicate = record.get("duplicate_of")
        cells.update(
            size=f"{record['width']}x{record['height']}",
            labels=", ".join(f"{lb['name']} {lb['score']:.2f}" for lb in labels[:2]) or "-",
            faces="-" if faces is None else str(len(faces)),
            nsfw="-" if moderation is None else f"{moderation['scores'].get('nsfw', 0.0):.2f}",
            text="-" if ocr is None else " | ".join(line["text"] for line in ocr) or "(none)",
            **{"duplicate of": duplicate["photo_id"] if duplicate else "-"},
        )
    else:
        cells.update(reason=record["reason"], stage=record["stage"], detail=record["detail"])
    return cells


def header(event_type: EventType) -> str:
    """The column titles for ``event_type``, aligned like ``row``."""
    return _line("where", {name: name for name, _ in COLUMNS[event_type]}, event_type)


def row(where: str, event_type: EventType, record: Mapping[str, Any]) -> str:
    """One aligned line: position, then the summary cells."""
    return _line(where, summary(event_type, record), event_type)


def _line(where: str, cells: Mapping[str, str], event_type: EventType) -> str:
    parts = [_fit(where, 10)]
    parts += [_fit(cells.get(name, ""), width) for name, width in COLUMNS[event_type]]
    return "  ".join(parts).rstrip()


def _fit(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
