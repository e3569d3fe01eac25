"""Face alignment: the similarity fit and the chip it warps."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from streams.imaging.decode import Decoder
from streams.inference.sessions import SessionConfig
from streams.inference.tasks.base import Work
from streams.inference.tasks.face_embed import FaceEmbedRunner, align_face, similarity_transform
from streams.models.repository import ModelRepository
from streams.samples import encode_jpeg, load_photo

TEMPLATE = np.array([[47.5, 46.6], [100.5, 46.6], [74.0, 76.6], [50.4, 103.0], [97.6, 103.0]])


def transformed(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return points @ np.array([[c, s], [-s, c]]) + np.array(shift)


def test_the_fit_recovers_a_similarity_exactly() -> None:
    photo_points = transformed(TEMPLATE, angle=0.4, scale=2.5, shift=(300.0, 120.0))
    matrix = similarity_transform(photo_points, TEMPLATE)
    mapped = photo_points @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - TEMPLATE).max() < 1e-9


def test_the_fit_is_least_squares_not_the_first_points() -> None:
    noisy = TEMPLATE + np.array([[3.0, 0], [-3.0, 0], [0, 0], [0, 0], [0, 0]])
    matrix = similarity_transform(noisy, TEMPLATE)
    mapped = noisy @ matrix[:, :2].T + matrix[:, 2]
    # the eyes' error is shared out, not put on the mouth: every point within the noise
    assert np.abs(mapped - TEMPLATE).max() < 3.0
    assert np.abs(mapped[2:] - TEMPLATE[2:]).max() > 0.0


def test_no_reflection_even_when_mirrored_points_fit_better() -> None:
    mirrored = TEMPLATE * np.array([-1.0, 1.0]) + np.array([200.0, 0.0])
    matrix = similarity_transform(mirrored, TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0


def dots(size: tuple[int, int], points: np.ndarray, radius: int) -> np.ndarray:
    image = np.zeros((*size, 3), dtype=np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x), round(y)), radius, (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("scale", [0.7, 4.0, 9.0])  # 4 and 9: shrunk by area first
def test_the_chip_puts_the_landmarks_on_the_template(scale: float) -> None:
    photo_points = transformed(TEMPLATE, angle=-0.3, scale=scale, shift=(400.0, 350.0))
    photo = dots((2000, 2000), photo_points, radius=round(3 * scale))  # 3 px in the chip
    chip = align_face(photo, photo_points, TEMPLATE, (150, 150))
    assert chip.shape == (150, 150, 3)
    for x, y in TEMPLATE:
        assert chip[round(y), round(x)].max() > 100, (x, y)  # each dot landed where expected
    assert chip[10, 10].max() == 0 and chip[140, 75].max() == 0  # and nothing else is lit


def test_degenerate_landmarks_give_a_black_chip() -> None:
    photo = np.full((100, 100, 3), 200, dtype=np.uint8)
    chip = align_face(photo, np.full((5, 2), 50.0), TEMPLATE, (150, 150))
    assert chip.shape == (150, 150, 3) and chip.max() == 0


def test_a_batchs_faces_are_embedded_in_runs_that_fit_the_pixel_bound(
    repository: ModelRepository,
) -> None:
    runner = FaceEmbedRunner(repository.get("dlib_face_resnet"), repository, SessionConfig())
    runner.max_run_pixels = 3 * 150 * 150  # three chips a run
    runs: list[int] = []
    session_run = runner.session.run

    def counted(feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        runs.append(len(next(iter(feeds.values()))))
        return session_run(feeds, outputs)

    runner.session.run = counted  # type: ignore[method-assign]
    photo = Decoder(max_pixels=10**8, min_side=512).decode(encode_jpeg(load_photo("astronaut")))
    # the astronaut's face, as BlazeFace placed it (photo pixels)
    landmarks = [(223.0, 112.0), (270.0, 110.0), (248.0, 134.0), (231.0, 158.0), (266.0, 156.0)]
    face = {"landmarks": [{"x": x, "y": y} for x, y in landmarks]}
    works = [Work(photo, fields={"faces": [face] * 4}), Work(photo, fields={"faces": [face] * 3})]
    out = runner.run(works)
    assert runs == [3, 3, 1]
    vectors = [f["embedding"] for item in out for f in item["faces"]]
    assert len(vectors) == 7 and all(np.allclose(v, vectors[0], atol=1e-4) for v in vectors)
