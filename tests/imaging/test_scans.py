"""Counting a JPEG's scans from its markers, so progressive bombs are refused before decoding."""

from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import FailureReason, ImageTooComplexError
from streams.imaging.decode import Decoder
from streams.imaging.header import HeaderError, jpeg_scan_count
from streams.samples import encode_jpeg, load_photo
from tests.imaging.bombs import many_scans, progressive_jpeg

COFFEE = load_photo("coffee")
SMALL = np.ascontiguousarray(COFFEE[:64, :96])


def test_scan_counts_match_libjpegs_scripts() -> None:
    grey = np.ascontiguousarray(cv2.cvtColor(COFFEE, cv2.COLOR_BGR2GRAY)[..., None])
    assert jpeg_scan_count(encode_jpeg(COFFEE), 100) == 1  # baseline: one scan
    assert jpeg_scan_count(progressive_jpeg(COFFEE), 100) == 10  # jpeg_simple_progression
    assert jpeg_scan_count(progressive_jpeg(grey), 100) == 6


def test_restart_markers_and_stuffed_bytes_stay_inside_their_scan() -> None:
    ok, baseline = cv2.imencode(".jpg", COFFEE, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    assert ok
    for data, scans in ((baseline.tobytes(), 1), (progressive_jpeg(COFFEE, 2), 10)):
        assert data.count(b"\xff\xd0") > 0 and data.count(b"\xff\x00") > 0
        assert jpeg_scan_count(data, 100) == scans


def test_counting_stops_past_the_limit_and_at_the_end_marker() -> None:
    bomb = many_scans(progressive_jpeg(SMALL), 500)
    assert jpeg_scan_count(bomb, 1000) == 500
    assert jpeg_scan_count(bomb, 100) == 101  # no need to walk the rest
    single = encode_jpeg(SMALL)
    assert jpeg_scan_count(single + single, 100) == 1  # after EOI: another image, or junk


@pytest.mark.parametrize("kept", [0, 1], ids=["no-length", "half-a-length"])
def test_a_scan_header_cut_short_is_a_header_error(kept: int) -> None:
    data = progressive_jpeg(SMALL)
    end = data.rfind(b"\xff\xda") + 2 + kept  # the last SOS marker, and `kept` length bytes
    with pytest.raises(HeaderError, match="truncated"):
        jpeg_scan_count(data[:end], 100)


@given(st.binary(max_size=512))
def test_any_bytes_after_soi_end_cleanly(tail: bytes) -> None:
    with contextlib.suppress(HeaderError):  # the only exception it may raise
        assert 0 <= jpeg_scan_count(b"\xff\xd8" + tail, 10) <= 11


def test_a_progressive_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = many_scans(progressive_jpeg(SMALL), 500)
    decoder = Decoder(max_pixels=20_000_000, min_side=512)  # default limit: 100 scans

    def no_decoding(*_: object) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(ImageTooComplexError, match="more than 100 scans") as info:
        decoder.decode(bomb)
    assert info.value.reason is FailureReason.IMAGE_TOO_COMPLEX
    monkeypatch.undo()
    assert decoder.decode(progressive_jpeg(COFFEE)).width == COFFEE.shape[1]
    assert Decoder(20_000_000, 512, max_jpeg_scans=500).decode(bomb).width == SMALL.shape[1]
