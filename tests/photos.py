"""Small synthetic photos for tests that need image files but not real content."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_photos(folder: Path, users: dict[str, int], size: int = 64) -> list[Path]:
    """Write <folder>/<user>/photo-<i>.jpg, different content each; returns the paths."""
    rng = np.random.default_rng(7)
    paths = []
    for user, count in users.items():
        for i in range(count):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            path = folder / user / f"photo-{i:02d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".jpg", image)
            assert ok
            path.write_bytes(data.tobytes())
            paths.append(path)
    return paths
