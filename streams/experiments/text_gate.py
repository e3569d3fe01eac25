"""`darkroom models train-gate`: a text gate (streams/inference/text_gate.py) learned from the
stream's own outputs.

Each PhotoEnriched on the enriched topic whose text a full detector read (``produced_by["ocr"]``
names it: ``<detector>+<recogniser>``) is one example: its embedding, and how many lines were
read (0: no text). A photo enriched more than once (a re-drive, a backfill) counts once, as its
last event says. Photos a gated detector judged are left out: its "no text" is the gate's own
guess, not a label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.contracts.schemas import EventType
from streams.inference.text_gate import FEATURES, GateError, Matrix
from streams.tail import TailedMessage


@dataclass
class Examples:
    """What a topic taught: one row per photo, and what was left out, by why."""

    rows: dict[tuple[str, str], tuple[list[float], int]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, message: TailedMessage, detector: str) -> None:
        """Take one message of the enriched topic."""
        event = message.event
        if event is None or event.event_type is not EventType.PHOTO_ENRICHED:
            self._skip("not a PhotoEnriched")
            return
        record = event.record
        ocr_by = (record.get("produced_by") or {}).get("ocr")
        if ocr_by is None:
            self._skip("no OCR ran")
        elif not str(ocr_by["name"]).startswith(f"{detector}+"):
            self._skip(f"OCR by {ocr_by['name']}, not {detector}")
        elif record.get(FEATURES) is None:
            self._skip("no embedding")
        else:
            key = (str(record["user_id"]), str(record["photo_id"]))
            self.rows[key] = (list(record[FEATURES]), len(record.get("ocr") or []))

    def arrays(self) -> tuple[Matrix, list[int]]:
        """(embeddings, lines read) of every photo."""
        if not self.rows:
            raise GateError(f"no example on the topic ({self._reasons()})")
        embeddings = np.asarray([e for e, _ in self.rows.values()], np.float64)
        return embeddings, [lines for _, lines in self.rows.values()]

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def _reasons(self) -> str:
        return ", ".join(f"{n} {why}" for why, n in self.skipped.items()) or "the topic is empty"


def examples(messages: Iterable[TailedMessage], detector: str) -> Examples:
    """The examples of ``messages`` (a scan of the enriched topic) for ``detector``."""
    found = Examples()
    for message in messages:
        found.add(message, detector)
    return found


def describe(trained: dict[str, Any]) -> str:
    """One line of what a gate measured out of fold."""
    return (
        f"{trained['photos']} photos ({trained['with_text']} with text, {trained['lines']} "
        f"lines): line recall {trained['line_recall_out_of_fold']:.3f} out of fold (target "
        f"{trained['line_recall_target']}), {trained['passed_without_text_out_of_fold']:.1%} of "
        f"photos without text passed"
    )
