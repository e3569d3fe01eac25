"""`darkroom experiments drift`: each production model's drift over photos.enriched, window by
window, measured the way the worker measures it in the stream (streams/engine/drift.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streams.config import Settings
from streams.contracts.codec import Codec
from streams.contracts.schemas import EventType
from streams.engine.drift import DriftWatch
from streams.engine.results import Enriched
from streams.tail import scan


@dataclass(frozen=True)
class WindowDrift:
    """One model's drift at the end of one current window."""

    model: str
    window: int  # 1: the first window after the reference
    photos: int  # the model's photos so far, the reference included
    signal: str  # its signal that moved most (by ratio)
    distance: float
    ratio: float

    @property
    def drifted(self) -> bool:
        return self.ratio >= 1


def drift_by_window(
    records: Iterable[dict[str, Any]], window: int, significance: float
) -> list[WindowDrift]:
    """Feed PhotoEnriched records in order; a row per model each time its current window is
    a whole new window of photos."""
    watch = DriftWatch(window, significance)
    rows: list[WindowDrift] = []
    reported: dict[str, int] = {}  # model -> its photos when its last row was made
    for record in records:
        watch.observe([Enriched(record["photo_id"], record, record.get("produced_by") or {})])
        for model, watched in watch.models.items():
            past = watched.seen - window
            if past <= 0 or past % window or reported.get(model) == watched.seen:
                continue
            reported[model] = watched.seen
            figures = watched.figures(watch.z)
            signal, worst = max(figures.items(), key=lambda item: item[1].ratio)
            rows.append(
                WindowDrift(
                    model, past // window, watched.seen, signal, worst.distance, worst.ratio
                )
            )
    return rows


def read_enriched(
    settings: Settings, codec: Codec, on_record: Callable[[int], None] = lambda _n: None
) -> Iterable[dict[str, Any]]:
    """Every PhotoEnriched on the enriched topic, in order per partition."""
    for n, message in enumerate(scan(settings, codec, settings.topics.enriched), start=1):
        on_record(n)
        event = message.event
        if event is not None and event.event_type is EventType.PHOTO_ENRICHED:
            yield event.record
