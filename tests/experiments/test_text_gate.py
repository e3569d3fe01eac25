"""`darkroom models train-gate`: examples from the enriched topic, and the command against a
broker (streams/experiments/text_gate.py, streams/cli/models.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.config import REPO_ROOT, Settings
from streams.contracts import EventType, SchemaRepository
from streams.contracts.codec import DecodedEvent, codec_from_settings
from streams.contracts.events import new_upload
from streams.engine.results import Enriched
from streams.experiments.text_gate import examples
from streams.inference.text_gate import GateError
from streams.kafka.clients import make_producer
from streams.pipeline.outputs import OutputBuilder
from streams.tail import TailedMessage
from tests.cli.runner import darkroom

SCHEMAS = SchemaRepository(REPO_ROOT / "schemas")
FULL = {"name": "ppocr_det+ppocr_rec", "version": "1"}
LINE = {"text": "EXIT", "score": 0.9, "quad": [{"x": 0.0, "y": 0.0}] * 4}


def enriched(photo: str, lines: int, embedding: list[float] | None, ocr_by: Any = FULL) -> Any:
    """A PhotoEnriched record as a worker builds it, with ``lines`` text lines read."""
    upload = new_upload(
        photo_id=photo,
        user_id="ann",
        content_type="image/jpeg",
        byte_size=3,
        blob=b"\xff\xd8\xff",
        uploaded_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    fields = {"format": "jpeg", "width": 64, "height": 48, "embedding": embedding}
    fields["ocr"] = [LINE] * lines
    produced_by = {"ocr": ocr_by} if ocr_by is not None else {}
    result = Enriched(photo_id=photo, fields=fields, produced_by=produced_by)
    return OutputBuilder(SCHEMAS).enriched(dict(upload), result, duplicate_of=None)


def message(record: dict[str, Any]) -> TailedMessage:
    event = DecodedEvent(EventType.PHOTO_ENRICHED, "v4", record)
    return TailedMessage("photos.enriched", 0, 0, None, b"ann", event, None)


def test_only_what_a_full_detector_read_is_a_label_and_a_photo_counts_once() -> None:
    gated = {"name": "ppocr_det_gated+ppocr_rec", "version": "1"}
    found = examples(
        [
            message(enriched("a", 0, [0.0, 1.0])),
            message(enriched("a", 2, [1.0, 0.0])),  # re-enriched: its last event counts
            message(enriched("b", 0, [0.5, 0.5], ocr_by=gated)),  # the gate's guess
            message(enriched("c", 0, None)),
            message(enriched("d", 0, [0.5, 0.5], ocr_by=None)),
        ],
        "ppocr_det",
    )
    embeddings, lines = found.arrays()
    assert embeddings.tolist() == [[1.0, 0.0]] and lines == [2]
    assert found.skipped == {
        "OCR by ppocr_det_gated+ppocr_rec, not ppocr_det": 1,
        "no embedding": 1,
        "no OCR ran": 1,
    }
    with pytest.raises(GateError, match="no example"):
        examples([message(enriched("c", 0, None))], "ppocr_det").arrays()


@pytest.mark.broker
def test_the_command_learns_a_gate_from_a_topic(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    codec = codec_from_settings(kafka, SCHEMAS)
    producer = make_producer(kafka)
    rng = np.random.default_rng(0)
    for i in range(40):
        lines = 1 + i % 3 if i % 2 else 0
        vector = rng.normal(0.0, 1.0, 8) + (2.0 if lines else 0.0)
        record = enriched(f"p{i}", lines, [float(v) for v in vector])
        value = codec.encode(EventType.PHOTO_ENRICHED, record)
        producer.produce(kafka.topics.enriched, value=value, key=b"ann")
    assert producer.flush(30) == 0
    out = tmp_path / "gate" / "text_gate.json"
    result = darkroom("models", "train-gate", "--out", str(out), env=kafka_env)
    assert result.exit_code == 0, result.output
    assert "40 photos (20 with text" in result.stdout
    gate = json.loads(out.read_text(encoding="utf-8"))
    assert gate["trained"]["line_recall_out_of_fold"] >= 0.975 and len(gate["weights"]) == 8
