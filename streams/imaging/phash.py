"""64-bit DCT perceptual hash with closed-form dihedral (rotate/mirror) variants.

Pipeline: BGR -> grey -> 32x32 ``INTER_AREA`` -> 2-D DCT-II (``cv2.dct``) ->
top-left 8x8 low-frequency block -> bit = coefficient > median.

Design choices:

* **DC excluded from the median, DC bit always 0.**  The DC term is the mean
  brightness times 32; it is always the largest coefficient, so thresholding
  it carries no information, and including it in the median shifts the
  threshold by half a rank for no benefit.  The median is taken over the 63
  AC coefficients, which makes the hash invariant to global brightness
  offsets.  The 8x8 bit layout is kept (DC position included) because the
  dihedral group acts on the full 8x8 grid.
* **Bit order** is row-major over the 8x8 block (row = vertical frequency
  ``v``, column = horizontal frequency ``u``), MSB first, so the 16-hex string
  reads the block row by row.

Dihedral variants: for an N-point DCT-II, reversing the input multiplies
coefficient ``k`` by ``(-1)^k`` exactly, and transposing the image transposes
the 2-D DCT.  All 8 rotations/mirrors are compositions of these, so their
hashes follow from the single 8x8 block without touching pixels.  The
median must be recomputed per variant (sign flips change it), which is why
:func:`dihedral_hashes` needs the float block, not just the 64-bit hash.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from streams.imaging.resize import area_resize

__all__ = [
    "DIHEDRAL_NAMES",
    "DUPLICATE_THRESHOLD",
    "apply_dihedral",
    "block_correlation",
    "dct_block",
    "dihedral_block",
    "dihedral_blocks",
    "dihedral_hashes",
    "hamming",
    "hash_from_block",
    "phash",
    "phash_hex",
]

_SIZE: Final = 32
_BLOCK: Final = 8
#: Hamming distance at or below which two hashes are treated as duplicates.
DUPLICATE_THRESHOLD: Final = 10

# Each transform is a sequence of elementary ops applied left to right:
# "h" = horizontal mirror (reverse columns), "v" = vertical mirror (reverse
# rows), "t" = transpose.  Rotations are counter-clockwise like np.rot90.
_DIHEDRAL_OPS: Final[tuple[tuple[str, str], ...]] = (
    ("identity", ""),
    ("rot90", "ht"),  # np.rot90(x, 1) == transpose(fliplr(x))
    ("rot180", "hv"),
    ("rot270", "vt"),  # np.rot90(x, 3) == transpose(flipud(x))
    ("mirror", "h"),  # fliplr
    ("mirror_rot90", "t"),  # rot90(fliplr(x)) == transpose(x)
    ("mirror_rot180", "v"),  # flipud
    ("mirror_rot270", "hvt"),  # anti-transpose
)
#: Names of the 8 dihedral transforms, in the order used by
#: :func:`dihedral_hashes` and :func:`apply_dihedral`.
DIHEDRAL_NAMES: Final = tuple(name for name, _ in _DIHEDRAL_OPS)

_SIGN: Final = np.where(np.arange(_BLOCK) % 2 == 0, 1.0, -1.0)  # (-1)^k
_WEIGHTS: Final = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))


def _grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError("image must be a uint8 numpy array")
    if image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if image.ndim == 2:
        return image
    raise ValueError(f"expected HxWx3 BGR or HxW grey image, got shape {image.shape}")


def dct_block(image: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Return the 8x8 low-frequency DCT block of a BGR (or grey) image.

    The colour conversion runs first because ``INTER_AREA`` on 3 channels
    costs 3x; grey conversion and area resizing commute up to rounding.
    Big images take a fast integer-factor box pre-shrink (see
    :func:`~streams.imaging.resize.area_resize`).
    """
    grey = _grey(image)
    if grey.shape[0] == 0 or grey.shape[1] == 0:
        raise ValueError("image is empty")
    small = area_resize(grey, _SIZE, _SIZE)
    coeffs = cv2.dct(np.asarray(small, dtype=np.float64))
    return np.asarray(coeffs[:_BLOCK, :_BLOCK], dtype=np.float64)


def hash_from_block(block: NDArray[np.float64]) -> int:
    """Threshold an 8x8 DCT block at the median of its 63 AC coefficients."""
    if block.shape != (_BLOCK, _BLOCK):
        raise ValueError(f"expected an 8x8 block, got {block.shape}")
    flat = block.ravel()
    median = np.median(flat[1:])
    bits = flat > median
    bits[0] = False  # DC: excluded by design
    return int(_WEIGHTS[bits].sum(dtype=np.uint64))


def phash(image: NDArray[np.uint8]) -> int:
    """Return the 64-bit perceptual hash of a BGR (or grey) image as an int."""
    return hash_from_block(dct_block(image))


def phash_hex(value: int) -> str:
    """Format a 64-bit hash as 16 lowercase hex digits."""
    if not 0 <= value < 2**64:
        raise ValueError("hash must be a 64-bit unsigned integer")
    return f"{value:016x}"


def hamming(a: int, b: int) -> int:
    """Return the number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def _block_op(block: NDArray[np.float64], op: str) -> NDArray[np.float64]:
    if op == "h":  # reverse columns -> horizontal frequency u gets (-1)^u
        return block * _SIGN[None, :]
    if op == "v":  # reverse rows -> vertical frequency v gets (-1)^v
        return block * _SIGN[:, None]
    return np.ascontiguousarray(block.T)


def _image_op(image: NDArray[np.uint8], op: str) -> NDArray[np.uint8]:
    if op == "h":
        return image[:, ::-1]
    if op == "v":
        return image[::-1]
    return np.swapaxes(image, 0, 1)


def apply_dihedral(image: NDArray[np.uint8], index: int) -> NDArray[np.uint8]:
    """Apply dihedral transform ``index`` (see :data:`DIHEDRAL_NAMES`) to pixels.

    Only needed for testing and for producing the upright image; hashing
    never has to do this.
    """
    out = image
    for op in _DIHEDRAL_OPS[index][1]:
        out = _image_op(out, op)
    return np.ascontiguousarray(out)


def dihedral_blocks(block: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Return the DCT blocks of the 8 dihedral transforms of an image."""
    if block.shape != (_BLOCK, _BLOCK):
        raise ValueError(f"expected an 8x8 block, got {block.shape}")
    return [dihedral_block(block, index) for index in range(len(_DIHEDRAL_OPS))]


def dihedral_block(block: NDArray[np.float64], index: int) -> NDArray[np.float64]:
    """The DCT block of dihedral transform ``index`` of the image whose block is ``block``."""
    out = block
    for op in _DIHEDRAL_OPS[index][1]:
        out = _block_op(out, op)
    return out


def block_correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Pearson correlation of two photos' low-pass 32x32 thumbnails, from their DCT blocks.

    The DCT is orthonormal up to scale, so the dot product of the AC coefficients is the
    covariance of the two low-passed thumbnails (Parseval): 1 for the same picture whatever its
    brightness and contrast, near 0 for unrelated ones. The hash keeps only the coefficients'
    signs against their median; this keeps their sizes, which is what tells a copy (0.78-1.0 on
    benchmarks/duplicates.py's set, for copies within 20 hash bits) from the same scene a moment
    later (at most 0.14) or another photo (at most 0.42).
    """
    x, y = a.ravel()[1:], b.ravel()[1:]
    scale = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / scale if scale > 0 else 0.0


def dihedral_hashes(image_or_block: NDArray[np.uint8] | NDArray[np.float64]) -> list[int]:
    """Return the hashes of the 8 rotations/mirrors, in :data:`DIHEDRAL_NAMES` order.

    Accepts a BGR/grey ``uint8`` image (hashed once) or a float 8x8 block
    from :func:`dct_block`.  ``result[i]`` approximates
    ``phash(apply_dihedral(image, i))``; ``result[0] == phash(image)``.
    To match a query against a rotated/mirrored duplicate, store
    ``phash(image)`` and compare the query's 8 variants against it.
    """
    if image_or_block.dtype == np.uint8:
        block = dct_block(np.asarray(image_or_block, dtype=np.uint8))
    else:
        block = np.asarray(image_or_block, dtype=np.float64)
    return [hash_from_block(b) for b in dihedral_blocks(block)]
