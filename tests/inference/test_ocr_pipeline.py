"""OCR geometry on degenerate shapes: no side of any resize or crop may become 0."""

from __future__ import annotations

import numpy as np
import pytest

from streams.inference import ocr_pipeline as pp

SHAPES = [(1, 100_000), (100_000, 1), (1, 1), (2, 3_000), (8, 400), (3_000, 4_000)]


@pytest.mark.parametrize(("h", "w"), SHAPES, ids=lambda v: str(v))
@pytest.mark.parametrize("limit_type", ["max", "min", "long"])
def test_detector_sizes_are_multiples_of_32_and_never_0(h: int, w: int, limit_type: str) -> None:
    rh, rw = pp.det_target_size(h, w, 960, limit_type)
    assert rh >= 32 and rw >= 32 and rh % 32 == 0 and rw % 32 == 0


def test_a_strip_resizes_for_the_detector() -> None:
    resized, meta = pp.det_resize(np.zeros((1, 5_000, 3), np.uint8), 960, "max")
    assert resized.shape == (32, 960, 3)
    assert (meta.orig_h, meta.orig_w, meta.resized_h, meta.resized_w) == (1, 5_000, 32, 960)


def test_an_empty_image_has_no_detector_size() -> None:
    with pytest.raises(ValueError, match="empty"):
        pp.det_target_size(0, 100)


def test_a_quad_thinner_than_a_pixel_crops_one_pixel_not_the_whole_photo() -> None:
    photo = np.zeros((100, 100, 3), np.uint8)
    quad = np.array([[10, 10], [10.5, 10], [10.5, 10.5], [10, 10.5]], np.float32)
    (crop,) = pp.crop_lines(photo, [quad])
    assert crop.shape == (1, 1, 3)
    (batch,) = pp.rec_preprocess([crop])
    assert batch.tensor.shape == (1, 3, pp.REC_HEIGHT, pp.REC_MIN_WIDTH)


def test_a_line_is_read_from_the_same_tensor_whatever_shares_its_batch() -> None:
    rng = np.random.default_rng(0)
    line = rng.integers(0, 255, (30, 200, 3), dtype=np.uint8)
    wider = rng.integers(0, 255, (30, 900, 3), dtype=np.uint8)
    (alone,) = pp.rec_preprocess([line])
    together = pp.rec_preprocess([wider, line, wider])
    (mine,) = [b for b in together if 1 in b.indices]
    assert mine.indices == [1]  # a wider crop pads in a batch of its own width
    assert np.array_equal(mine.tensor[0], alone.tensor[0])
    assert alone.tensor.shape[3] % pp.REC_WIDTH_STEP == 0
