"""Turn decoded events into short table rows for people (JSON lines: streams.contracts.rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
        ("tags", 20),
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


def leaf_tags(record: Mapping[str, Any], most: int = 3) -> str:
    """The photo's most specific tags (Cat, not its parents Pet, Mammal, Animal), best first."""
    tags = record.get("tags")
    if tags is None:
        return "-"
    implied = {parent for tag in tags for parent in tag["parents"]}
    leaves = [t["name"] for t in tags if t["name"] not in implied]
    return ", ".join(leaves[:most]) or "(none)"


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
            tags=leaf_tags(record),
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
