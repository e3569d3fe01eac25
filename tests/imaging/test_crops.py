"""Crop boxes: the largest box of each ratio, keeping faces whole, else the salient part."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streams.imaging.crops import crop_box, parse_ratio, salient_map


@pytest.mark.parametrize(
    ("ratio", "size"), [((1, 1), (3000, 3000)), ((16, 9), (4000, 2250)), ((4, 5), (2400, 3000))]
)
def test_each_crop_is_the_largest_box_of_its_ratio(
    ratio: tuple[int, int], size: tuple[int, int]
) -> None:
    x1, y1, x2, y2 = crop_box(4000, 3000, ratio, []).box
    assert (round(x2 - x1), round(y2 - y1)) == size
    assert x1 >= 0 and y1 >= 0 and x2 <= 4000 and y2 <= 3000


def test_a_face_at_the_edge_is_kept_whole_where_a_centre_crop_cuts_it() -> None:
    face = (3500.0, 1000.0, 3900.0, 1500.0)
    crop = crop_box(4000, 3000, (1, 1), [face])
    assert (crop.basis, crop.faces_whole) == ("faces", 1) and crop.box[2] == 4000
    centre = crop_box(4000, 3000, (1, 1), [])
    assert centre.basis == "centre" and centre.box[2] < face[2]


def test_faces_that_cannot_all_fit_keep_the_largest() -> None:
    small, large = (100.0, 1000.0, 300.0, 1250.0), (3300.0, 800.0, 3900.0, 1600.0)
    crop = crop_box(4000, 3000, (4, 5), [small, large])  # 2400 wide: not both
    assert (crop.basis, crop.faces_whole) == ("largest_faces", 1)
    assert crop.box[0] <= large[0] and crop.box[2] >= large[2]


def test_without_faces_the_crop_holds_the_salient_part() -> None:
    image = np.full((600, 1600, 3), 90, np.uint8)
    cv2.circle(image, (1400, 300), 120, (255, 255, 255), -1)  # one bright object, right
    crop = crop_box(1600, 600, (1, 1), [], salient_map(image))
    assert crop.basis == "salient" and crop.box[0] <= 1280 and crop.box[2] >= 1520


def test_the_saliency_map_sums_to_one_at_its_side() -> None:
    saliency = salient_map(np.zeros((300, 900, 3), np.uint8))
    assert saliency.shape == (21, 64) and abs(float(saliency.sum()) - 1) < 1e-4


@pytest.mark.parametrize("text", ["4x5", "4:", "0:1", "a:b", "1:2:3"])
def test_a_ratio_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a ratio"):
        parse_ratio(text)
