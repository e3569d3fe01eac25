"""Fitting photos to model inputs, and mapping model pixels back to photo pixels."""

from __future__ import annotations

import numpy as np
import pytest

from streams.inference.preprocess import TensorMaker, fit
from streams.models.manifest import InputSpec


def marked(width: int, height: int, x: int, y: int) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[y - 2 : y + 3, x - 2 : x + 3] = 255
    return image


@pytest.mark.parametrize(
    "spec",
    [
        InputSpec(size=(192, 192), resize="letterbox"),
        InputSpec(size=(224, 224), resize="crop", resize_to=256),
        InputSpec(size=(224, 224), resize="stretch_crop", resize_to=256),
        InputSpec(size=(100, 160), resize="stretch"),
    ],
    ids=lambda s: s.resize,
)
@pytest.mark.parametrize("photo_scale", [1.0, 4.0])
def test_placement_maps_model_pixels_back_to_the_photo(spec: InputSpec, photo_scale: float) -> None:
    image = marked(400, 300, x=200, y=160)
    fitted, placement = fit(image, spec, photo_scale)
    assert fitted.shape == (*spec.size, 3)
    ys, xs = np.nonzero(fitted[..., 0] > 128)
    centre = np.array([[xs.mean(), ys.mean()]], dtype=np.float32)
    back = placement.to_photo(centre)[0]
    assert np.allclose(back, [200 * photo_scale, 160 * photo_scale], atol=3 * photo_scale)


SPECS = [
    InputSpec(size=(192, 192), resize="letterbox"),
    InputSpec(size=(224, 224), resize="crop", resize_to=256),
    InputSpec(size=(224, 224), resize="stretch_crop", resize_to=256),
    InputSpec(size=(100, 160), resize="stretch"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.resize)
@pytest.mark.parametrize("shape", [(1, 50), (50, 1), (8, 400)], ids=str)
def test_thin_photos_fit_every_mode(spec: InputSpec, shape: tuple[int, int]) -> None:
    fitted, placement = fit(np.full((*shape, 3), 200, np.uint8), spec)
    assert fitted.shape == (*spec.size, 3)
    assert placement.scale_x > 0 and placement.scale_y > 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.resize)
def test_an_empty_photo_cannot_be_fitted(spec: InputSpec) -> None:
    with pytest.raises(ValueError, match="empty"):
        fit(np.zeros((0, 10, 3), np.uint8), spec)


def test_tensor_maker_applies_colour_order_scale_and_layout() -> None:
    pixel = np.array([[[10, 20, 30]]], dtype=np.uint8)  # B, G, R
    rgb = InputSpec(
        size=(1, 1), resize="stretch", scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )
    tensor = TensorMaker(rgb)([pixel])
    assert tensor.shape == (1, 3, 1, 1)
    assert np.allclose(tensor[0, :, 0, 0], (np.array([30, 20, 10]) / 255 - 0.5) / 0.5)
    bgr = InputSpec(
        size=(1, 1),
        resize="stretch",
        layout="NHWC",
        color="BGR",
        scale=1.0,
        mean=(104.0, 117.0, 123.0),
    )
    assert np.allclose(TensorMaker(bgr)([pixel])[0, 0, 0], [10 - 104, 20 - 117, 30 - 123])
