"""Outcome ids and attempts (schemas/README.md, "Outcomes"): a redelivery repeats its outcome's
id, a new attempt (a re-drive under another replay id) gets its own, and so does the other kind
of outcome for the same attempt."""

from __future__ import annotations

from pathlib import Path

from streams.contracts.headers import REPLAY_ID
from streams.engine import Enricher
from streams.pipeline.outputs import RawMessage
from tests.pipeline.test_batch import decoded, make_pipeline, upload_bytes


def test_redeliveries_repeat_the_id_and_new_attempts_get_their_own(
    enricher: Enricher, tmp_path: Path
) -> None:
    pipeline = make_pipeline(enricher, tmp_path, attempts=lambda photo: 7)
    value = upload_bytes()
    original = RawMessage("photos.uploaded", 0, 5, b"u1", value)
    redriven = RawMessage("photos.uploaded", 0, 9, b"u1", value, ((REPLAY_ID, b"r1"),))

    first, again = (decoded(pipeline.run([original]).photos[0]) for _ in range(2))
    redone = decoded(pipeline.run([redriven]).photos[0])
    dead = decoded(pipeline.quarantine(original, ValueError("bug")).photos[0])

    assert first["event_id"] == again["event_id"]  # consumers deduplicate on it
    assert len({first["event_id"], redone["event_id"], dead["event_id"]}) == 3
    upload = first["upload_event_id"]
    assert redone["upload_event_id"] == dead["upload_event_id"] == upload
    assert first["attempt"] == redone["attempt"] == dead["attempt"] == 7  # the rule's number


def test_a_message_that_never_decoded_is_named_by_its_position(
    enricher: Enricher, tmp_path: Path
) -> None:
    pipeline = make_pipeline(enricher, tmp_path)
    at = [RawMessage("photos.uploaded", 0, offset, b"k", b"\x00junk") for offset in (1, 1, 2)]
    ids = [decoded(pipeline.run([message]).photos[0])["event_id"] for message in at]
    assert ids[0] == ids[1] != ids[2]
    assert decoded(pipeline.run([at[0]]).photos[0])["upload_event_id"] is None
