"""Thumbnails: sizes, no upscaling, upright, no metadata, colours converted to sRGB."""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
import piexif
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageCms

from streams.imaging.decode import Decoder
from streams.imaging.thumbnails import render_thumbnails, thumbnail_specs
from tests.imaging.conftest import encode, load_bgr
from tests.imaging.icc import SWAPPED

SPECS = thumbnail_specs([256, 1440], ["webp", "jpeg"], quality=80)


def decoder(min_side: int = 1440) -> Decoder:
    return Decoder(max_pixels=100_000_000, min_side=min_side)


def thumbnails(data: bytes, min_side: int = 1440) -> dict[str, tuple[NDArray[np.uint8], bytes]]:
    made = render_thumbnails(decoder(min_side).decode(data), data, SPECS)
    return {t.name: (_pixels(t.data), t.data) for t in made}


def _pixels(data: bytes) -> NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _jpeg(image: NDArray[np.uint8], **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(
        buffer, "JPEG", quality=95, **save
    )
    return buffer.getvalue()


def test_each_size_in_each_format_fits_its_long_side() -> None:
    photo = cv2.resize(load_bgr("astronaut"), (4000, 3000))  # a 12 MP landscape
    made = render_thumbnails(decoder().decode(encode(photo, ".jpg")), b"", SPECS)
    assert [t.name for t in made] == ["1440.webp", "1440.jpg", "256.webp", "256.jpg"]
    for t in made:
        assert (t.width, t.height) == ((1440, 1080) if t.spec.size == 1440 else (256, 192))
        assert _pixels(t.data).shape == (t.height, t.width, 3)
        assert t.sha256 == hashlib.sha256(t.data).hexdigest()
    assert made[0].data[8:12] == b"WEBP" and made[1].data[:2] == b"\xff\xd8"


def test_a_small_photo_is_never_upscaled() -> None:
    small = cv2.resize(load_bgr("chelsea"), (200, 100))
    made = thumbnails(encode(small, ".png"), min_side=512)
    assert {name: pixels.shape[:2] for name, (pixels, _) in made.items()} == {
        "1440.webp": (100, 200),
        "1440.jpg": (100, 200),
        "256.webp": (100, 200),
        "256.jpg": (100, 200),
    }


def test_thumbnails_are_upright_and_carry_no_metadata() -> None:
    stored = np.zeros((200, 400, 3), np.uint8)
    stored[:, :200] = (0, 0, 255)  # left half red (BGR)
    stored[:, 200:] = (255, 0, 0)  # right half blue
    gps = {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (0, 1), (0, 1))}
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}, "GPS": gps})
    tagged = _jpeg(stored, exif=exif)
    assert b"Exif" in tagged
    for name, (pixels, data) in thumbnails(tagged).items():
        # orientation 6: turned a quarter clockwise, the left half is now on top
        height, width = pixels.shape[:2]
        assert (height, width) == ((256, 128) if name.startswith("256") else (400, 200)), name
        assert pixels[height // 8, width // 2, 2] > 200, name
        assert pixels[height * 7 // 8, width // 2, 0] > 200, name
        assert b"Exif" not in data and b"GPS" not in data, name
        with Image.open(io.BytesIO(data)) as opened:
            assert not opened.getexif() and "icc_profile" not in opened.info, name


def test_a_wide_gamut_profile_is_converted_to_srgb() -> None:
    red = np.zeros((64, 64, 3), np.uint8)
    red[:] = (0, 0, 255)
    converted = render_thumbnails(
        decoder(512).decode(tagged := _jpeg(red, icc_profile=SWAPPED)), tagged, SPECS
    )
    plain = render_thumbnails(decoder(512).decode(untagged := _jpeg(red)), untagged, SPECS)
    for made, expected in ((converted, 0), (plain, 2)):  # blue (BGR 0) or red as stored
        for t in made:
            b, g, r = _pixels(t.data)[32, 32].astype(int)
            assert np.argmax([b, g, r]) == expected and max(b, g, r) > 200, (t.name, b, g, r)
    assert {t.srgb_from for t in converted} == {"red and blue swapped"}
    assert {t.srgb_from for t in plain} == {None}


@pytest.mark.parametrize(
    "icc",
    [ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), b"not a profile" * 10],
    ids=["srgb", "unreadable"],
)
def test_an_srgb_or_unreadable_profile_leaves_the_pixels_as_they_are(icc: bytes) -> None:
    red = np.zeros((64, 64, 3), np.uint8)
    red[:] = (0, 0, 255)
    tagged = _jpeg(red, icc_profile=icc)
    for t in render_thumbnails(decoder(512).decode(tagged), tagged, SPECS):
        assert t.srgb_from is None
        assert np.argmax(_pixels(t.data)[32, 32]) == 2


def test_previews_above_the_webp_limit_are_jpeg_alone_unless_webp_is_all_there_is() -> None:
    names = [s.name for s in thumbnail_specs([256, 1440], ["webp", "jpeg"], 80, webp_max_size=512)]
    assert names == ["1440.jpg", "256.webp", "256.jpg"]
    only_webp = thumbnail_specs([256, 1440], ["webp"], 80, webp_max_size=512)
    assert [s.name for s in only_webp] == ["1440.webp", "256.webp"]


def test_a_smaller_size_made_from_a_larger_one_stays_close_to_the_photo() -> None:
    # the 256 px thumbnail is shrunk from the 1440 px one's pixels, not from the photo
    photo = cv2.resize(load_bgr("astronaut"), (4000, 3000))
    decoded = decoder().decode(data := encode(photo, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    (alone,) = render_thumbnails(decoded, data, thumbnail_specs([256], ["jpeg"], 95))
    cascaded = render_thumbnails(decoded, data, thumbnail_specs([256, 1440], ["jpeg"], 95))[1]
    difference = np.abs(_pixels(alone.data).astype(int) - _pixels(cascaded.data).astype(int))
    assert cascaded.name == "256.jpg" and difference.mean() < 2.0
