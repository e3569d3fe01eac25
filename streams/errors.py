"""Why a photo failed: the typed errors that become PhotoFailed dead letters.

Every error that can stop one photo (and only that photo) derives from PhotoError and names its
FailureReason, so the stage that catches it can build the dead letter without guessing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class FailureReason(StrEnum):
    """Mirror of the FailureReason enum in schemas/PhotoFailed (a test keeps them equal)."""

    UNKNOWN = "UNKNOWN"
    MALFORMED_EVENT = "MALFORMED_EVENT"
    BLOB_MISSING = "BLOB_MISSING"
    BLOB_TOO_LARGE = "BLOB_TOO_LARGE"
    BLOB_CHECKSUM_MISMATCH = "BLOB_CHECKSUM_MISMATCH"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    INFERENCE_ERROR = "INFERENCE_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class PhotoError(Exception):
    """One photo cannot be enriched; the message is the dead letter's detail."""

    reason: ClassVar[FailureReason] = FailureReason.INTERNAL_ERROR


class BlobMissingError(PhotoError):
    """The bytes are not where the event says (or the URI is not allowed)."""

    reason = FailureReason.BLOB_MISSING


class BlobTooLargeError(PhotoError):
    """The bytes are larger than the configured limit."""

    reason = FailureReason.BLOB_TOO_LARGE


class BlobChecksumError(PhotoError):
    """The bytes do not match the event's content_sha256."""

    reason = FailureReason.BLOB_CHECKSUM_MISMATCH


class UnsupportedFormatError(PhotoError):
    """The bytes are not an image format Darkroom decodes."""

    reason = FailureReason.UNSUPPORTED_FORMAT


class CorruptImageError(PhotoError):
    """The bytes claim a known format but do not decode (truncated, damaged, empty)."""

    reason = FailureReason.CORRUPT_IMAGE


class ImageTooLargeError(PhotoError):
    """The header declares more pixels than the configured limit (a decompression bomb?)."""

    reason = FailureReason.IMAGE_TOO_LARGE


class InferenceError(PhotoError):
    """A model failed on this photo (alone, not merely somewhere in its batch)."""

    reason = FailureReason.INFERENCE_ERROR
