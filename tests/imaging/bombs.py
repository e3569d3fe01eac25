"""Inputs that are small as bytes and expensive to decode, built in the tests (never stored)."""

from __future__ import annotations

import numpy as np

from streams.samples import encode_png, many_scans, progressive_jpeg

__all__ = ["many_scans", "progressive_jpeg", "strip_png"]


def strip_png(width: int, height: int) -> bytes:
    """A real, complete PNG of ``width`` x ``height`` (a 1x100000 one is 63 KB)."""
    image = np.full((height, width, 3), 200, dtype=np.uint8)
    return encode_png(image)
