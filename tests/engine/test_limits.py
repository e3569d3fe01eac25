"""The engine's bounds: geometry and scans refused up front, inference chunked by input size,
and a per-photo deadline that keeps one stuck decode from holding up the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from streams.config import load_settings
from streams.engine import Enriched, Enricher, Failed, PhotoInput
from streams.errors import FailureReason
from streams.inference.tasks.ocr import OcrRunner
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo, png_bomb_header
from tests.imaging.bombs import many_scans, progressive_jpeg, strip_png

DEADLINE_S = 2.0
STALL_SAFETY_NET_S = 30.0  # only a broken engine waits this long (the test then fails)


def test_degenerate_and_too_complex_photos_fail_alone_before_decoding(enricher: Enricher) -> None:
    small = np.ascontiguousarray(load_photo("coffee")[:64, :96])
    bad = {
        "strip-header": (png_bomb_header(1, 100_000), FailureReason.DEGENERATE_IMAGE),
        "thin": (strip_png(6, 3_000), FailureReason.DEGENERATE_IMAGE),
        "wide": (strip_png(3_000, 50), FailureReason.DEGENERATE_IMAGE),
        "scans": (many_scans(progressive_jpeg(small), 500), FailureReason.IMAGE_TOO_COMPLEX),
    }
    good = encode_jpeg(load_photo("coffee"))
    items = [PhotoInput("good-0", good)]
    items += [PhotoInput(name, data) for name, (data, _) in bad.items()]
    items += [PhotoInput("good-1", good)]
    results = enricher.enrich(items)
    failed = {r.photo_id: r for r in results if isinstance(r, Failed)}
    assert {k: f.error.reason for k, f in failed.items()} == {k: v for k, (_, v) in bad.items()}
    assert all(f.stage == "decode_image" for f in failed.values())
    assert isinstance(results[0], Enriched) and isinstance(results[-1], Enriched)


def test_large_model_inputs_run_in_smaller_chunks(
    enricher: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: dict[str, list[int]] = {}
    for runner in enricher.runners:

        def run(works: Any, name: str = runner.name, original: Any = runner.run) -> Any:
            sizes.setdefault(name, []).append(len(works))
            return original(works)

        monkeypatch.setattr(runner, "run", run)
    ocr = next(r for r in enricher.runners if isinstance(r, OcrRunner))
    monkeypatch.setattr(ocr, "text_gate", None)  # every photo to the detector: its runs counted
    detector_runs: list[int] = []

    def detect(feeds: dict[str, Any], original: Any = ocr.det.run) -> Any:
        detector_runs.append(len(next(iter(feeds.values()))))
        return original(feeds)

    monkeypatch.setattr(ocr.det, "run", detect)
    monkeypatch.setattr(ocr, "max_run_pixels", 300_000)  # one 512x512 detector input a run
    astronaut = encode_jpeg(load_photo("astronaut"))
    results = enricher.enrich([PhotoInput(f"a{i}", astronaut) for i in range(4)])
    assert all(isinstance(r, Enriched) for r in results)
    assert sizes["mobilenet_v2"] == [4]  # 16 x 256 px fit in one run
    # the OCR step gets the whole batch (its recogniser batches every photo's line crops), and
    # splits its detector runs by input pixels: four same-size inputs, one a run
    assert sizes["ppocr_det_gated+ppocr_rec"] == [4]
    assert detector_runs == [1, 1, 1, 1]


@pytest.fixture(scope="module")
def one_thread(repository: ModelRepository) -> Iterator[Enricher]:
    """One decode thread (and so one spare) and a short deadline: every stall shows."""
    settings = load_settings().engine.model_copy(
        update={"models": "mobilenet_v2", "decode_threads": 1, "photo_deadline_s": DEADLINE_S}
    )
    engine = Enricher(settings, repository)
    yield engine
    engine.close()


class Stall:
    """A decoder hook: the photos given to ``block`` stay in decode until released."""

    def __init__(self, engine: Enricher, monkeypatch: pytest.MonkeyPatch) -> None:
        self.original = engine.decoder.decode
        self.blocked: dict[bytes, tuple[threading.Event, threading.Event]] = {}
        monkeypatch.setattr(engine.decoder, "decode", self.decode)

    def block(self, data: bytes) -> tuple[threading.Event, threading.Event]:
        """(entered, release) events for a photo with these bytes."""
        events = self.blocked[data] = (threading.Event(), threading.Event())
        return events

    def release_all(self) -> None:
        for _, release in self.blocked.values():
            release.set()

    def decode(self, data: bytes, **kwargs: Any) -> Any:
        if data in self.blocked:
            entered, release = self.blocked[data]
            entered.set()
            release.wait(STALL_SAFETY_NET_S)
        return self.original(data, **kwargs)


def photos(*names: str) -> list[PhotoInput]:
    return [
        PhotoInput(f"{name}-{i}", encode_jpeg(load_photo(name))) for i, name in enumerate(names)
    ]


def assert_late(result: Enriched | Failed) -> None:
    assert isinstance(result, Failed), result
    assert result.error.reason is FailureReason.DEADLINE_EXCEEDED
    assert result.stage == "decode_image" and "DARKROOM_ENGINE_PHOTO_DEADLINE_S" in result.detail


def test_a_photo_past_its_deadline_fails_alone_and_its_thread_comes_back(
    one_thread: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    stall = Stall(one_thread, monkeypatch)
    coffee = load_photo("coffee")
    stuck, stuck_later = encode_jpeg(coffee, quality=70), encode_jpeg(coffee, quality=71)
    entered, release = stall.block(stuck)
    try:
        first = one_thread.enrich([PhotoInput("stuck", stuck), *photos("chelsea", "rocket")])
        assert entered.is_set()
        assert_late(first[0])
        assert all(isinstance(r, Enriched) for r in first[1:])
        # the late decode still holds its thread: the spare thread serves the next batch
        second = one_thread.enrich(photos("astronaut", "coffee"))
        assert all(isinstance(r, Enriched) for r in second)
        release.set()  # the late decode ends; its result is dropped and its thread is free
        stall.block(stuck_later)
        # one thread takes the newly stuck photo: the other photo needs the thread that was late
        third = one_thread.enrich([PhotoInput("stuck-later", stuck_later), *photos("chelsea")])
    finally:
        stall.release_all()
    assert_late(third[0])
    assert isinstance(third[1], Enriched)
    assert [r.photo_id for r in first + second + third] == [
        "stuck", "chelsea-0", "rocket-1", "astronaut-0", "coffee-1", "stuck-later", "chelsea-0",
    ]  # fmt: skip


def test_the_deadline_also_holds_in_pipelined_batches(
    one_thread: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    stall = Stall(one_thread, monkeypatch)
    stuck = encode_jpeg(load_photo("rocket"), quality=72)
    stall.block(stuck)
    batches = [photos("coffee"), [PhotoInput("stuck", stuck), *photos("chelsea")], photos("rocket")]
    try:
        results = list(one_thread.enrich_batches(batches))
    finally:
        stall.release_all()
    assert_late(results[1][0])
    assert all(isinstance(r, Enriched) for r in (results[0] + results[1][1:] + results[2]))
