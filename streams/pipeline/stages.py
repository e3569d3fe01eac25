"""Which pipeline stage an exception came from, carried on the exception itself.

The pipeline's stages run in threads and overlap (batch n+1 starts while batch n finishes), so
"the stage running now" is not a thing one can ask afterwards; the stage names itself on the
exception as it passes (a PEP 678 note), and a dead letter built from it says where it happened.
"""

from __future__ import annotations

_PREFIX = "darkroom stage: "


def name_stage(error: BaseException, stage: str) -> None:
    """Note ``stage`` on ``error`` unless an inner stage did already."""
    if stage_of(error) == "unknown":
        error.add_note(f"{_PREFIX}{stage}")


def stage_of(error: BaseException) -> str:
    """The stage noted on ``error``, or "unknown"."""
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_PREFIX):
            return note[len(_PREFIX) :]
    return "unknown"
