"""Format sniffing from the first bytes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streams.errors import UnsupportedFormatError
from streams.imaging.sniff import ImageFormat, require_image, sniff

IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        (".jpg", ImageFormat.JPEG),
        (".png", ImageFormat.PNG),
        (".webp", ImageFormat.WEBP),
        (".bmp", ImageFormat.BMP),
        (".tiff", ImageFormat.TIFF),
    ],
)
def test_opencv_encodings_are_recognised(extension: str, expected: ImageFormat) -> None:
    ok, data = cv2.imencode(extension, IMAGE)
    assert ok
    assert sniff(data.tobytes()[:32]) is expected


def test_gif_and_heic_signatures() -> None:
    assert sniff(b"GIF89a" + bytes(10)) is ImageFormat.GIF
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") is ImageFormat.HEIC
    assert sniff(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00") is None  # an MP4 is not a photo


def test_formats_know_their_mime_and_extension() -> None:
    assert ImageFormat.JPEG.mime == "image/jpeg" and ImageFormat.JPEG.extension == ".jpg"
    assert ImageFormat.PNG.extension == ".png"


@pytest.mark.parametrize(("head", "message"), [(b"", "is empty"), (b"%PDF-1.7", "255044462d")])
def test_require_image_explains(head: bytes, message: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=message):
        require_image(head)
