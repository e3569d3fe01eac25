"""Shadow results through the shared pipeline: one ShadowResult per variant run, always sendable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import load_settings
from streams.contracts import EventType
from streams.contracts.events import new_upload
from streams.engine import Enricher
from streams.engine.variants import VariantRun
from streams.models.manifest import Task
from streams.models.repository import ModelRepository
from streams.pipeline.outputs import OutputBuilder, encode_shadow
from tests.pipeline.test_batch import CODEC, SCHEMAS, decoded, make_pipeline, upload_bytes
from tests.variants import variant_manifest, with_variants


def upload_of(data: bytes) -> dict[str, Any]:
    return new_upload(
        photo_id="p1", user_id="u1", content_type="image/jpeg", blob=data, byte_size=len(data)
    )


@pytest.fixture
def shadowed(tmp_path: Path, repository: ModelRepository) -> Iterator[Enricher]:
    variant = variant_manifest(repository, "mobilenet_v2", "bgr", input_color="BGR")
    repo = with_variants(tmp_path / "repo", repository, variant, only=("mobilenet_v2",))
    settings = load_settings().engine.model_copy(
        update={"models": "mobilenet_v2", "variants": "all"}
    )
    enricher = Enricher(settings, repo)
    yield enricher
    enricher.close()


def test_each_variant_run_becomes_a_shadow_result(shadowed: Enricher, tmp_path: Path) -> None:
    photo = make_pipeline(shadowed, tmp_path).test(upload_bytes("chelsea", user="u7"), key=b"u7")
    enriched = decoded(photo)
    assert photo.topic == "enriched" and enriched["produced_by"]["labels"]["name"] == "mobilenet_v2"
    (value,) = photo.shadows
    event = CODEC.decode(value)
    assert event.event_type is EventType.SHADOW_RESULT
    shadow = event.record
    assert shadow["photo_id"] == "p1" and shadow["user_id"] == "u7"
    assert shadow["event_id"] == enriched["upload_event_id"]  # the upload it measured
    assert shadow["mode"] == "shadow" and shadow["task"] == "classify"
    assert shadow["production"] == enriched["produced_by"]["labels"]
    assert shadow["variant"] == {"name": "bgr", "version": "test-bgr"}
    assert set(shadow["agreement"]) == {"top1_agreement", "top5_overlap", "embedding_cosine"}
    assert shadow["variant_fields"]["labels"] and shadow["variant_fields"]["faces"] is None
    assert shadow["variant_ms"] > 0 and shadow["production_batch"] == 1
    assert enriched["timings_ms"]["variant:bgr"] == pytest.approx(shadow["variant_ms"])


def test_a_shadow_result_too_large_keeps_its_figures() -> None:
    """A variant that read 2,000 lines of text: its record goes without them, figures kept."""
    lines = [{"text": "x" * 40, "score": 0.9, "quad": [{"x": 0.0, "y": 0.0}] * 4}] * 2000
    run = VariantRun(
        variant="det",
        mode="shadow",
        task=Task.OCR_DETECT,
        production={"name": "ppocr_det", "version": "1"},
        model={"name": "det", "version": "2"},
        provenance={"name": "det+ppocr_rec", "version": "2+1"},
        production_ms=90.0,
        production_batch=1,
        variant_ms=30.0,
        variant_batch=1,
        fields={"ocr": lines},
        figures={"character_error_rate": 0.0},
    )
    upload = new_upload(
        photo_id="p1", user_id="u1", content_type="image/jpeg", blob=b"x", byte_size=1
    )
    whole = encode_shadow(CODEC, OutputBuilder(SCHEMAS), upload, run, 1_000_000)
    assert len(whole) > 100_000
    value = encode_shadow(CODEC, OutputBuilder(SCHEMAS), upload, run, 100_000)
    assert len(value) <= 100_000
    shadow = CODEC.decode(value).record
    assert shadow["variant_fields"]["ocr"] is None
    assert "left out" in shadow["error"]
    assert shadow["agreement"] == {"character_error_rate": 0.0}
    assert shadow["variant_ms"] == 30.0


def test_a_failed_photo_has_no_shadow_result(shadowed: Enricher, tmp_path: Path) -> None:
    record = new_upload(
        photo_id="p1", user_id="u1", content_type="image/jpeg", blob=b"no photo", byte_size=8
    )
    value = CODEC.encode(EventType.PHOTO_UPLOADED, record)
    photo = make_pipeline(shadowed, tmp_path).test(value)
    assert photo.topic == "failed" and photo.shadows == []
