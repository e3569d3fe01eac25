"""Tests for quality measures and dominant colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from streams.imaging.quality import (
    DEFAULT_BLUR_THRESHOLD,
    Quality,
    dominant_colors,
    face_sharpness,
    measure_quality,
)
from streams.samples import load_photo
from tests.imaging.conftest import load_bgr


def test_sharp_photo_is_not_blurry(photo: NDArray[np.uint8]) -> None:
    q = measure_quality(photo)
    assert q.blur_variance > 3 * DEFAULT_BLUR_THRESHOLD
    assert not q.is_blurry


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_blurred_photo_is_blurry(photo: NDArray[np.uint8], sigma: float) -> None:
    blurred = np.asarray(cv2.GaussianBlur(photo, (0, 0), sigma), dtype=np.uint8)
    q = measure_quality(blurred)
    assert q.is_blurry
    assert q.blur_variance < DEFAULT_BLUR_THRESHOLD / 2


@pytest.mark.parametrize("factor", [2, 4])
def test_blur_variance_is_resolution_independent(photo: NDArray[np.uint8], factor: int) -> None:
    h, w = photo.shape[:2]
    big = np.asarray(
        cv2.resize(photo, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST),
        dtype=np.uint8,
    )
    ratio = measure_quality(big).blur_variance / measure_quality(photo).blur_variance
    assert 0.6 < ratio < 1.5  # chelsea (451 px) is upscaled to 512, the others shrink


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Quality(0.0, True, 0.0, 0.0, 1.0, 0.0)),
        (255, Quality(0.0, True, 1.0, 0.0, 0.0, 1.0)),
        (51, Quality(0.0, True, 0.2, 0.0, 0.0, 0.0)),
    ],
)
def test_flat_images(value: int, expected: Quality) -> None:
    q = measure_quality(np.full((300, 400, 3), value, np.uint8))
    assert q.is_blurry == expected.is_blurry
    assert q.blur_variance == pytest.approx(0.0, abs=1e-9)
    for field in ("brightness", "contrast", "underexposed_fraction", "overexposed_fraction"):
        assert getattr(q, field) == pytest.approx(getattr(expected, field), abs=1e-9)


def test_half_black_half_white_exposure() -> None:
    image = np.zeros((512, 512, 3), np.uint8)
    image[:, 256:] = 255
    q = measure_quality(image)
    assert q.brightness == pytest.approx(0.5)
    assert q.contrast == pytest.approx(0.5)
    assert q.underexposed_fraction == pytest.approx(0.5)
    assert q.overexposed_fraction == pytest.approx(0.5)


def test_accepts_grey_and_rejects_bad_input() -> None:
    grey = cv2.cvtColor(load_bgr("astronaut"), cv2.COLOR_BGR2GRAY)
    assert measure_quality(np.asarray(grey, np.uint8)) == measure_quality(load_bgr("astronaut"))
    with pytest.raises(TypeError):
        measure_quality(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="expected"):
        measure_quality(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        measure_quality(np.zeros((0, 4, 3), np.uint8))


def test_dominant_colors_two_colour_split() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :150] = (255, 0, 0)  # BGR blue -> sRGB #0000ff
    image[:, 150:] = (0, 128, 255)  # BGR orange -> sRGB #ff8000
    assert dominant_colors(image) == [("#0000ff", 0.75), ("#ff8000", 0.25)]


def test_dominant_colors_uniform_image() -> None:
    image = np.full((30, 40, 3), (10, 20, 30), np.uint8)
    assert dominant_colors(image, k=5) == [("#1e140a", 1.0)]


def test_dominant_colors_properties(photo: NDArray[np.uint8]) -> None:
    colours = dominant_colors(photo, k=5)
    assert len(colours) == 5
    assert colours == dominant_colors(photo.copy(), k=5)  # deterministic
    fractions = [f for _, f in colours]
    assert fractions == sorted(fractions, reverse=True)
    assert sum(fractions) == pytest.approx(1.0)
    assert all(len(h) == 7 and h.startswith("#") for h, _ in colours)
    assert dominant_colors(photo, k=1)[0][1] == 1.0


def test_dominant_colors_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must"):
        dominant_colors(np.zeros((4, 4, 3), np.uint8), k=0)


# the astronaut's face, as BlazeFace boxes it (x1, y1, x2, y2)
ASTRONAUT_FACE = (170.0, 80.0, 270.0, 190.0)


def test_a_blurred_face_reads_softer_and_a_dim_one_does_not() -> None:
    photo = load_photo("astronaut")
    x1, y1, x2, y2 = map(int, ASTRONAUT_FACE)
    face_blurred = photo.copy()
    face_blurred[y1:y2, x1:x2] = cv2.GaussianBlur(photo[y1:y2, x1:x2], (0, 0), 2)
    dim = (photo.astype(np.float32) * 0.3).astype(np.uint8)
    sharp = face_sharpness(photo, ASTRONAUT_FACE)
    assert sharp > 0.1 > face_sharpness(face_blurred, ASTRONAUT_FACE)  # FACE_IN_FOCUS
    assert face_sharpness(dim, ASTRONAUT_FACE) == pytest.approx(sharp, rel=0.25)
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert face_sharpness(grey, ASTRONAUT_FACE) == pytest.approx(sharp)
    assert face_sharpness(photo, (600.0, 600.0, 700.0, 700.0)) == 0.0  # outside the photo
    assert face_sharpness(np.full((50, 50, 3), 128, np.uint8), (0, 0, 50, 50)) == 0.0  # flat
