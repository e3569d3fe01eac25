"""Tests for the DCT perceptual hash and its dihedral variants."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from streams.imaging.phash import (
    DIHEDRAL_NAMES,
    DUPLICATE_THRESHOLD,
    apply_dihedral,
    dct_block,
    dihedral_blocks,
    dihedral_hashes,
    hamming,
    phash,
    phash_hex,
)
from tests.imaging.conftest import OTHERS, PHOTOS, load_bgr

NUMPY_REFERENCE = [
    lambda x: x,
    lambda x: np.rot90(x, 1),
    lambda x: np.rot90(x, 2),
    lambda x: np.rot90(x, 3),
    np.fliplr,
    lambda x: np.rot90(np.fliplr(x), 1),
    lambda x: np.rot90(np.fliplr(x), 2),
    lambda x: np.rot90(np.fliplr(x), 3),
]
MAX_DIHEDRAL_DISTANCE = 4


@pytest.mark.parametrize("index", range(8))
def test_apply_dihedral_matches_numpy(index: int) -> None:
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(apply_dihedral(x, index), NUMPY_REFERENCE[index](x))


def test_dihedral_group_is_complete() -> None:
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    outputs = {apply_dihedral(x, i).tobytes() + bytes(apply_dihedral(x, i).shape) for i in range(8)}
    assert len(outputs) == 8
    assert len(DIHEDRAL_NAMES) == 8


@pytest.mark.parametrize("index", range(8))
def test_block_identity_is_exact_on_32px_images(index: int) -> None:
    """With no resampling the DCT sign-flip/transpose identities hold exactly."""
    rng = np.random.default_rng(index)
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    expected = dct_block(apply_dihedral(grey, index))
    assert np.allclose(dihedral_blocks(dct_block(grey))[index], expected, atol=1e-9)


@pytest.mark.parametrize("index", range(8))
def test_dihedral_hashes_match_transformed_photos(photo: NDArray[np.uint8], index: int) -> None:
    predicted = dihedral_hashes(photo)[index]
    actual = phash(apply_dihedral(photo, index))
    assert hamming(predicted, actual) <= MAX_DIHEDRAL_DISTANCE


def test_dihedral_hashes_from_block_or_image_agree(photo: NDArray[np.uint8]) -> None:
    hashes = dihedral_hashes(photo)
    assert hashes == dihedral_hashes(dct_block(photo))
    assert hashes[0] == phash(photo)


def _degraded_copy(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    brighter = cv2.convertScaleAbs(small, alpha=1.1, beta=25)
    ok, buf = cv2.imencode(".jpg", brighter, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)


def test_degraded_copy_is_a_duplicate(photo: NDArray[np.uint8]) -> None:
    assert hamming(phash(photo), phash(_degraded_copy(photo))) <= DUPLICATE_THRESHOLD


def test_different_photos_are_far_apart() -> None:
    hashes = [phash(load_bgr(name)) for name in PHOTOS + OTHERS]
    distances = [hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > 2 * DUPLICATE_THRESHOLD - 4
    assert 26 <= float(np.mean(distances)) <= 38


def test_hash_format_and_invariants(photo: NDArray[np.uint8]) -> None:
    value = phash(photo)
    assert 0 <= value < 2**63  # DC bit (MSB) is always 0
    assert len(phash_hex(value)) == 16
    assert int(phash_hex(value), 16) == value
    assert bin(value).count("1") in range(28, 33)  # ~half of the 63 AC bits
    grey = np.asarray(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    assert phash(grey) == value


def test_flat_image_and_helpers() -> None:
    assert phash(np.full((10, 10, 3), 77, np.uint8)) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
    assert phash_hex(255) == "00000000000000ff"
    with pytest.raises(ValueError, match="64-bit"):
        phash_hex(2**64)
    with pytest.raises(ValueError, match="8x8"):
        dihedral_hashes(np.zeros((4, 4), np.float64))
