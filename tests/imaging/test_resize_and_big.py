"""Big-image behaviour: fast area resize, working copies, dihedral hashes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from streams.imaging.phash import apply_dihedral, dihedral_hashes, hamming, phash
from streams.imaging.quality import dominant_colors, measure_quality, working_image
from streams.imaging.resize import area_resize
from tests.imaging.conftest import load_bgr


@pytest.fixture(scope="module")
def big() -> NDArray[np.uint8]:
    image = load_bgr("coffee")
    return np.asarray(cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC), np.uint8)


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (512, 384), (100, 10)])
def test_area_resize_matches_single_stage(big: NDArray[np.uint8], size: tuple[int, int]) -> None:
    ours = area_resize(big, *size).astype(np.int16)
    ref = np.asarray(cv2.resize(big, size, interpolation=cv2.INTER_AREA)).astype(np.int16)
    diff = np.abs(ours - ref)
    assert ours.shape == ref.shape
    assert diff.mean() < 1.0
    assert diff.max() <= 12


@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_area_resize_refuses_a_side_of_0(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="every side must be >= 1"):
        area_resize(np.zeros((100, 100, 3), np.uint8), *size)


def test_working_image_gives_same_features(big: NDArray[np.uint8]) -> None:
    work = working_image(big)
    assert work.shape == (384, 512, 3)
    assert hamming(phash(big), phash(work)) <= 2
    q_big, q_work = measure_quality(big), measure_quality(work)
    assert q_work.blur_variance == pytest.approx(q_big.blur_variance, rel=0.02)
    assert q_work.brightness == pytest.approx(q_big.brightness, abs=0.002)
    colours_big, colours_work = dominant_colors(big), dominant_colors(work)
    assert [f for _, f in colours_work] == pytest.approx([f for _, f in colours_big], abs=0.02)


@pytest.mark.parametrize("index", range(8))
def test_dihedral_on_12mp(big: NDArray[np.uint8], index: int) -> None:
    predicted = dihedral_hashes(big)[index]
    assert hamming(predicted, phash(apply_dihedral(big, index))) <= 4


def test_working_image_small_and_grey() -> None:
    small = load_bgr("chelsea")  # 451 x 300: upscaled to 512 long side
    assert working_image(small).shape == (341, 512, 3)
    grey = np.zeros((100, 512), np.uint8)
    assert working_image(grey) is grey
