"""The real portraits the face benchmarks share, their copies, and the engine's embedding.

Obama (three photos), Biden: face_recognition's public-domain test images; Collins: the
astronaut (NASA, public domain); Grace Hopper: matplotlib's sample (US Navy, public domain).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import cv2
import matplotlib.cbook
import numpy as np

from streams.engine import Enriched, Enricher, PhotoInput
from streams.samples import encode_jpeg, load_photo

PEOPLE = {"obama": "Obama", "obama2": "Obama", "obama3": "Obama", "biden": "Biden"}
PEOPLE |= {"astronaut": "Collins", "hopper": "Hopper"}
# a smoke run's portraits: the fewest with a same-person pair and a different-people pair
SMOKE = ("obama", "obama2", "biden")


def originals(names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """The portraits (those of ``names``, when given), BGR."""
    wanted = [n for n in PEOPLE if names is None or n in names]
    found: dict[str, np.ndarray] = {n: load_photo(n) for n in wanted if n != "hopper"}
    if "hopper" in wanted:
        hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = cv2.imread(str(hopper))
        assert image is not None, hopper
        found["hopper"] = image
    return found


def copies(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The photo, then turned, shrunk, enlarged and mirrored copies (black borders)."""
    height, width = image.shape[:2]
    yield "original", image
    for angle, scale in ((15, 1.0), (-25, 1.0), (0, 0.4), (10, 0.6), (0, 1.6)):
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
        yield f"turn {angle} x{scale}", cv2.warpAffine(image, turn, (width, height))
    yield "mirror", np.ascontiguousarray(image[:, ::-1])


def darkroom_embed(enricher: Enricher, bgr: np.ndarray) -> np.ndarray | None:
    """The largest face's embedding through the engine, or None without a face."""
    (result,) = enricher.enrich([PhotoInput("p", encode_jpeg(bgr))])
    assert isinstance(result, Enriched), result
    faces = result.fields["faces"]
    if not faces:
        return None
    face = max(faces, key=lambda f: f["box"]["x2"] - f["box"]["x1"])
    return np.array(face["embedding"])
