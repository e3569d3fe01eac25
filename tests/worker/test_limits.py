"""Outputs near and over the producer's size limit, on the real broker: nothing lost.

Before the fix a 2 MB non-event message on photos.uploaded produced no dead letter at all
(Faust's producer refused the 2 MB dead letter), and the batch's valid uploads were lost with it
(the agent crashed and its offsets were committed past the batch).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from streams.config import Settings
from streams.samples import encode_jpeg, load_photo
from tests.worker.harness import WorkerProcess, running, wait_for_outcomes
from tests.worker.publishing import produce, upload

pytestmark = pytest.mark.broker

LIMIT = 128 * 1024


def test_oversized_messages_become_fitted_dead_letters_and_cost_nobody_else(
    stream_settings: Settings, tmp_path: Path
) -> None:
    kafka = stream_settings.kafka.model_copy(update={"max_message_bytes": LIMIT})
    blobs = stream_settings.blobs.model_copy(update={"inline_max_bytes": 64 * 1024})
    settings = stream_settings.model_copy(update={"kafka": kafka, "blobs": blobs})
    photo = settings.blobs.root / "mallory" / "chelsea.jpg"
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(encode_jpeg(load_photo("chelsea")))
    near = b"\x01" * int(0.9 * LIMIT)
    double = b"\x02" * (2 * LIMIT)
    fifteen = b"\x03" * (15 * LIMIT)
    loud = settings.model_copy(
        update={"kafka": kafka.model_copy(update={"max_message_bytes": 16 * LIMIT})}
    )
    produce(
        loud,  # the test's own producer may send what the worker's may not
        [
            (b"mallory", upload(settings, "before", photo.resolve().as_uri())),
            (b"x", near),
            (b"x", double),
            (b"x", fifteen),
            (b"mallory", upload(settings, "after", photo.resolve().as_uri())),
        ],
    )
    with running(WorkerProcess(settings, tmp_path, "w1")):
        enriched, failed = wait_for_outcomes(settings, 5)
    assert sorted(e["photo_id"] for e in enriched) == ["after", "before"]
    by_size = {f["original_size"]: f for f in failed}
    assert set(by_size) == {len(near), len(double), len(fifteen)}
    for original in (near, double, fifteen):
        letter = by_size[len(original)]
        assert letter["reason"] == "MALFORMED_EVENT"
        assert letter["original_sha256"] == hashlib.sha256(original).hexdigest()
        assert original.startswith(letter["original_value"])
        assert len(letter["_value"]) <= LIMIT
        assert letter["original_truncated"] is (len(original) > 0.9 * LIMIT)
    assert by_size[len(near)]["original_value"] == near  # 0.9x fits whole
