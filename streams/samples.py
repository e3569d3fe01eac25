"""Real sample photos for the demo, the tests and the benchmarks.

The photos ship inside the scikit-image wheel (BSD-3), so nothing is downloaded. Besides the
originals, the set has a near-duplicate (smaller, re-encoded), a rotated copy, and corrupt files
that look like images to a sniffer but must end as dead letters.

Portraits of the same person in different photos (for face embeddings) come from the
face_recognition 1.3.0 source archive on PyPI, which `darkroom models install` fetches into the
cache (``pip download``); its tests/test_images are official White House photos by Pete Souza, US
federal works and so public domain: Barack Obama in three photos (2012, 2009, 2010) and Joe
Biden in one (cropped from the same 2010 photo as the third).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from streams.errors import SetupError

_EOI = b"\xff\xd9"

Image = npt.NDArray[np.uint8]


class SamplesUnavailableError(SetupError):
    """scikit-image (the `samples` extra) is not installed, or the portrait archive is missing."""


PORTRAIT_PACKAGE = "face_recognition==1.3.0"  # its source archive: `darkroom models install`
PORTRAIT_ARCHIVE = "face_recognition-1.3.0.tar.gz"
PORTRAIT_ARCHIVE_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
PORTRAITS = ("obama", "obama2", "obama3", "biden")  # the files' names, less ".jpg"


def samples_cache() -> Path:
    """Where `darkroom models install` puts downloaded sample archives."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "darkroom" / "samples"


def _portrait(name: str) -> Callable[[], Image]:
    """Loader of one portrait, read from the archive in the cache (checked by SHA-256)."""

    def load() -> Image:
        archive = samples_cache() / PORTRAIT_ARCHIVE
        try:
            data = archive.read_bytes()
        except FileNotFoundError:
            raise SamplesUnavailableError(
                f"{archive} is missing: run `darkroom models install` (it downloads "
                f"{PORTRAIT_PACKAGE}'s source archive there)"
            ) from None
        if hashlib.sha256(data).hexdigest() != PORTRAIT_ARCHIVE_SHA256:
            raise SamplesUnavailableError(
                f"{archive} is not the archive the portraits were checked in"
            )
        with tarfile.open(archive) as tar:
            member = tar.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}.jpg")
            assert member is not None
            encoded = np.frombuffer(member.read(), dtype=np.uint8)
        return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), dtype=np.uint8)

    return load


@dataclass(frozen=True)
class Sample:
    """One file of the sample set: which user it belongs to and what it should produce."""

    user: str
    filename: str
    expect: str  # what a person should see in the results


def _skimage(name: str, index: int | None = None) -> Callable[[], Image]:
    """Loader of skimage.data.<name>() (item ``index`` when it returns a tuple), as BGR."""

    def load() -> Image:
        try:
            from skimage import data
        except ImportError:
            raise SamplesUnavailableError(
                "sample photos need scikit-image: pip install 'darkroom[samples]'"
            ) from None
        loaded = getattr(data, name)()
        image: Image = loaded if index is None else loaded[index]
        if image.ndim == 2:
            return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        return np.ascontiguousarray(cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR))

    return load


PHOTOS: dict[str, Callable[[], Image]] = {
    **{
        name: _skimage(name)
        for name in (
            "astronaut",
            "chelsea",
            "coffee",
            "rocket",
            "hubble_deep_field",
            "coins",
            "text",
            "page",
            "camera",
        )
    },
    "motorcycle": _skimage("stereo_motorcycle", index=0),
}


def _sign() -> Image:
    """The coffee photo with a shop sign painted on it (for OCR)."""
    image = PHOTOS["coffee"]().copy()
    cv2.rectangle(image, (40, 30), (420, 110), (255, 255, 255), thickness=-1)
    cv2.putText(
        image,
        "OPEN 24 HOURS",
        (55, 88),
        cv2.FONT_HERSHEY_DUPLEX,
        1.5,
        (20, 20, 160),
        3,
        cv2.LINE_AA,
    )
    return image


PHOTOS["sign"] = _sign


def _astronaut_mirror() -> Image:
    """The astronaut mirrored, turned 8 degrees and shrunk to 80%: the same face in another
    pose and size (for face embeddings)."""
    image = PHOTOS["astronaut"]()[:, ::-1]
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 8, 0.8)
    return np.ascontiguousarray(
        cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REFLECT)
    )


PHOTOS["astronaut_mirror"] = _astronaut_mirror
PHOTOS.update({name: _portrait(name) for name in PORTRAITS})


def load_photo(name: str) -> Image:
    """A sample photo as a BGR uint8 array (OpenCV's convention)."""
    return PHOTOS[name]()


def encode_jpeg(image: Image, quality: int = 92) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buffer)


def encode_png(image: Image) -> bytes:
    """PNG bytes of a BGR image."""
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return bytes(buffer)


def png_bomb_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims a huge image: it must be refused before decoding."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def progressive_jpeg(image: Image, restart_interval: int = 0) -> bytes:
    """``image`` as a progressive JPEG (libjpeg's default script: 10 scans in colour)."""
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 90]
    if restart_interval:
        params += [cv2.IMWRITE_JPEG_RST_INTERVAL, restart_interval]
    ok, encoded = cv2.imencode(".jpg", image, params)
    assert ok
    return bytes(encoded.tobytes())


def many_scans(jpeg: bytes, scans: int) -> bytes:
    """A progressive ``jpeg`` whose last scan is repeated until it has ``scans`` scans.

    libjpeg decodes it (a repeated refinement scan is only a warning) at the cost of one more
    pass over the frame per scan: the 1.4 MB, 20,000-scan attack decoded for a minute.
    """
    assert jpeg.endswith(_EOI)
    # libjpeg writes no FF DA inside a table, and entropy data escapes every FF: this is the
    # last scan's header, its data follows up to EOI
    last = jpeg.rfind(b"\xff\xda")
    body, tail = jpeg[:last], jpeg[last:-2]
    have = jpeg.count(b"\xff\xda")
    return body + tail * (scans - have + 1) + _EOI


def write_demo_set(folder: Path) -> list[Sample]:
    """Write the demo photo set as <folder>/<user>/<file>; returns what was written."""
    chelsea = load_photo("chelsea")
    half = np.asarray(
        cv2.resize(chelsea, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    files: list[tuple[Sample, bytes]] = [
        (Sample("alice", "chelsea.jpg", "cat labels"), encode_jpeg(chelsea)),
        (
            Sample("alice", "chelsea-small.jpg", "near-duplicate of chelsea.jpg"),
            encode_jpeg(half, quality=40),
        ),
        (
            Sample("alice", "chelsea-rotated.jpg", "rotated duplicate of chelsea.jpg"),
            encode_jpeg(np.rot90(chelsea, k=-1).copy()),
        ),
        (Sample("alice", "coffee.jpg", "espresso"), encode_jpeg(load_photo("coffee"))),
        (Sample("alice", "sign.jpg", "text: OPEN 24 HOURS"), encode_jpeg(load_photo("sign"))),
        (Sample("alice", "astronaut.jpg", "one face"), encode_jpeg(load_photo("astronaut"))),
        (Sample("bob", "rocket.jpg", "rocket"), encode_jpeg(load_photo("rocket"))),
        (Sample("bob", "motorcycle.png", "motorcycle"), encode_png(load_photo("motorcycle"))),
        (Sample("bob", "hubble.jpg", "stars"), encode_jpeg(load_photo("hubble_deep_field"))),
        (Sample("bob", "coins.png", "coins"), encode_png(load_photo("coins"))),
        (Sample("carol", "text.png", "printed text"), encode_png(load_photo("text"))),
        (Sample("carol", "page.png", "a page of text"), encode_png(load_photo("page"))),
        (Sample("carol", "camera.png", "a cameraman"), encode_png(load_photo("camera"))),
        *(
            (Sample("dave", f"{name}.jpg", what), encode_jpeg(load_photo(name)))
            for name, what in (
                ("obama", "a portrait"),
                ("obama2", "the same man"),
                ("obama3", "the same man: a person from 3 faces"),
                ("biden", "another man"),
            )
        ),
        (
            Sample("mallory", "truncated.jpg", "dead letter: CORRUPT_IMAGE"),
            encode_jpeg(load_photo("coffee"))[:5000],
        ),
        (Sample("mallory", "bomb.png", "dead letter: IMAGE_TOO_LARGE"), png_bomb_header()),
    ]
    for sample, data in files:
        path = folder / sample.user / sample.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return [sample for sample, _ in files]
