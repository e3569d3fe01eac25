"""Decoding: typed refusals before any pixel is decoded, reduced JPEG decoding, orientation."""

from __future__ import annotations

import struct
import time

import cv2
import numpy as np
import pytest

from streams.errors import (
    CorruptImageError,
    DeadlineExceededError,
    DegenerateImageError,
    FailureReason,
    ImageTooLargeError,
    PhotoError,
    UnsupportedFormatError,
)
from streams.imaging.budget import Budget
from streams.imaging.decode import Decoder, apply_orientation
from streams.imaging.sniff import ImageFormat
from streams.samples import encode_jpeg, encode_png, load_photo, png_bomb_header
from tests.imaging.bombs import strip_png

DECODER = Decoder(max_pixels=20_000_000, min_side=512)


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment holding only the orientation tag after SOI."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", CorruptImageError, "empty"),
        (b"%PDF-1.7 not a photo", UnsupportedFormatError, "not a recognised image"),
        (encode_jpeg(load_photo("coffee"))[:4000], CorruptImageError, "truncated JPEG"),
        (encode_png(load_photo("coins"))[:3000], CorruptImageError, "truncated PNG"),
        (png_bomb_header(), ImageTooLargeError, "50000x50000"),
        (b"\xff\xd8\xff\xe0" + bytes(40), CorruptImageError, "header"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(20), UnsupportedFormatError, "heic"),
    ],
    ids=["empty", "pdf", "truncated-jpeg", "truncated-png", "bomb", "garbage-jpeg", "heic"],
)
def test_bad_bytes_get_the_right_typed_error(
    data: bytes, error: type[PhotoError], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        DECODER.decode(data)
    assert info.value.reason is error.reason


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".bmp", ".tiff", ".gif"])
def test_every_supported_format_decodes(extension: str) -> None:
    image = load_photo("chelsea")
    ok, data = cv2.imencode(extension, image)
    assert ok
    photo = DECODER.decode(data.tobytes())
    assert (photo.width, photo.height) == (451, 300) and photo.image.shape == (300, 451, 3)
    assert photo.format.extension.lstrip(".") in extension


def test_large_jpegs_decode_reduced_but_report_full_size() -> None:
    big = cv2.resize(load_photo("astronaut"), (4000, 3000))
    photo = DECODER.decode(encode_jpeg(big))
    assert (photo.width, photo.height) == (4000, 3000)
    assert photo.image.shape == (750, 1000, 3) and photo.scale == 4.0
    assert DECODER.reduction(ImageFormat.PNG, 4000, 3000) == 1  # only JPEG gains from DCT scaling
    assert Decoder(10**9, min_side=4000).reduction(ImageFormat.JPEG, 4000, 3000) == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_opencv(orientation: int) -> None:
    image = load_photo("chelsea")
    data = with_orientation(encode_jpeg(image), orientation)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies EXIF
    photo = DECODER.decode(data)
    assert photo.orientation == orientation
    assert photo.image.shape == reference.shape
    assert (photo.height, photo.width) == reference.shape[:2]
    assert np.abs(photo.image.astype(int) - reference.astype(int)).mean() < 1.0


def test_orientation_one_is_a_no_op() -> None:
    image = load_photo("coins")
    assert apply_orientation(image, 1) is image or np.array_equal(
        apply_orientation(image, 1), image
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [(1, 100_000), (100_000, 1), (7, 300), (5_100, 100)],
    ids=["strip-1x100000", "strip-100000x1", "side-below-8", "ratio-51"],
)
def test_degenerate_geometry_is_refused_from_the_header(width: int, height: int) -> None:
    with pytest.raises(DegenerateImageError) as info:
        DECODER.decode(png_bomb_header(width, height))  # a header and no pixels to decode
    assert info.value.reason is FailureReason.DEGENERATE_IMAGE


def test_the_real_strip_is_refused_and_panoramas_still_decode() -> None:
    with pytest.raises(DegenerateImageError, match="1x100000: a side shorter than 8"):
        DECODER.decode(strip_png(1, 100_000))  # the attack: 63 KB, drove a worker to 18.5 GB
    panorama = np.asarray(cv2.resize(load_photo("coffee"), (4000, 400)), dtype=np.uint8)
    assert DECODER.decode(encode_jpeg(panorama)).width == 4000  # 10:1, as wide as they come
    assert DECODER.decode(strip_png(400, 8)).image.shape == (8, 400, 3)  # 50:1 is the limit
    with pytest.raises(DegenerateImageError, match="beyond 5:1"):
        Decoder(20_000_000, 512, max_aspect_ratio=5).decode(encode_jpeg(panorama))


@pytest.mark.parametrize("extension", [".png", ".bmp", ".tiff"])
def test_large_photos_are_shrunk_right_after_decoding(extension: str) -> None:
    big = np.asarray(cv2.resize(load_photo("astronaut"), (4000, 3000)), dtype=np.uint8)
    ok, data = cv2.imencode(extension, big)
    assert ok
    photo = DECODER.decode(data.tobytes())
    assert (photo.width, photo.height) == (4000, 3000)  # geometry stays in full-size pixels
    assert DECODER.min_side <= max(photo.image.shape[:2]) < 2 * DECODER.min_side
    assert photo.image.shape == (429, 571, 3) and photo.scale == pytest.approx(7, rel=1e-3)
    reference = cv2.resize(big, (571, 429), interpolation=cv2.INTER_AREA)
    assert np.abs(photo.image.astype(int) - reference.astype(int)).mean() < 1.0


def test_decoding_takes_its_pixels_from_the_budget_and_gives_them_back() -> None:
    budget = Budget(1_000_000)
    decoder = Decoder(20_000_000, 512, budget=budget)
    data = encode_png(load_photo("chelsea"))
    assert budget.acquire(budget.limit)  # other photos hold all of it
    with pytest.raises(DeadlineExceededError, match="MAX_DECODED_PIXELS_IN_FLIGHT"):
        decoder.decode(data, deadline=time.monotonic())  # already past: it does not wait
    budget.release(budget.limit)
    assert decoder.decode(data).width == 451 and budget.in_use == 0
    broken = data.replace(b"IDAT", b"IDAX", 1)  # passes the header checks, fails decoding
    with pytest.raises(CorruptImageError):
        decoder.decode(broken)
    assert budget.in_use == 0
