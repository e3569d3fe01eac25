"""Recognise an image format from its first bytes (never from the file name)."""

from __future__ import annotations

from enum import StrEnum

from streams.errors import UnsupportedFormatError

SNIFF_BYTES = 32  # enough for every signature below


class ImageFormat(StrEnum):
    """Formats Darkroom recognises; the value is the short name used in events."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    BMP = "bmp"
    TIFF = "tiff"
    GIF = "gif"
    HEIC = "heic"

    @property
    def mime(self) -> str:
        """The MIME type, e.g. image/jpeg."""
        return f"image/{self.value}"

    @property
    def extension(self) -> str:
        """The usual file extension with its dot, e.g. .jpg."""
        return {ImageFormat.JPEG: ".jpg", ImageFormat.TIFF: ".tif"}.get(self, f".{self.value}")


_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff(head: bytes) -> ImageFormat | None:
    """The format whose signature ``head`` starts with, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if head.startswith(b"BM") and len(head) >= 14:
        return ImageFormat.BMP
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageFormat.TIFF
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ImageFormat.GIF
    if head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return ImageFormat.HEIC
    return None


def require_image(head: bytes, what: str = "data") -> ImageFormat:
    """Like sniff, but UnsupportedFormatError naming what the bytes look like."""
    found = sniff(head)
    if found is None:
        if not head:
            raise UnsupportedFormatError(f"{what} is empty (0 bytes)")
        raise UnsupportedFormatError(
            f"{what} is not a recognised image (starts with {head[:8].hex()}); "
            f"expected one of: {', '.join(f.value for f in ImageFormat)}"
        )
    return found
