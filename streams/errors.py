"""Every error Darkroom raises on purpose, under one root.

``DarkroomError`` has a few families, each with the exit code a command ends with when one
escapes to the CLI (one handler there turns it into a one-line message, never a traceback):

    UsageError        2  bad arguments, settings or input files
    UnreachableError  3  Kafka, the schema registry or a store did not answer
    SetupError        4  something must be installed or built first (models, Java, ...)
    AuthenticationError 5  Kafka refused who we are (password, certificate, mechanism)
    AuthorizationError  6  Kafka knows who we are, but a right (an ACL) is missing
    OperationError    1  the command ran, but part of its work failed

``PhotoError`` is the family of one photo's failure: it never reaches the CLI; it names its
``FailureReason`` and becomes that photo's PhotoFailed dead letter (as a ``Failed``).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Exit statuses of every command (also in docs/configuration.md)."""

    OK = 0
    FAILED = 1  # the command ran but some work failed (e.g. a photo not delivered)
    USAGE = 2  # bad arguments or input (missing path, not an image, bad config)
    UNREACHABLE = 3  # Kafka (or the schema registry) did not answer
    SETUP = 4  # something must be installed or built first
    AUTHENTICATION = 5  # Kafka refused the credentials, the certificate or the mechanism
    AUTHORIZATION = 6  # a right (ACL) is missing
    INTERRUPTED = 130  # Ctrl-C


class DarkroomError(Exception):
    """The root: an expected failure with a message meant for a person."""

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED


class UsageError(DarkroomError):
    """Bad arguments, settings or input: the person can fix the command."""

    exit_code = ExitCode.USAGE


class UnreachableError(DarkroomError):
    """A service (Kafka, the schema registry, a blob store) did not answer in time."""

    exit_code = ExitCode.UNREACHABLE


class SetupError(DarkroomError):
    """Something must be installed, built or started first (the message says what)."""

    exit_code = ExitCode.SETUP


class AuthenticationError(DarkroomError):
    """A service refused who we are: a wrong password, an untrusted certificate, a mechanism it
    does not offer (the message names which)."""

    exit_code = ExitCode.AUTHENTICATION


class AuthorizationError(DarkroomError):
    """A service knows who we are but refuses an operation: a right is missing (the message
    names the principal, the operation and the resource)."""

    exit_code = ExitCode.AUTHORIZATION


class OperationError(DarkroomError):
    """The command ran, but some of its work did not complete (the message says which)."""

    exit_code = ExitCode.FAILED


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
    DEGENERATE_IMAGE = "DEGENERATE_IMAGE"
    IMAGE_TOO_COMPLEX = "IMAGE_TOO_COMPLEX"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    BLOB_STORE_UNAVAILABLE = "BLOB_STORE_UNAVAILABLE"
    USER_ERASED = "USER_ERASED"
    PHOTO_DELETED = "PHOTO_DELETED"


class PhotoError(DarkroomError):
    """One photo cannot be enriched; the message is the dead letter's detail."""

    reason: ClassVar[FailureReason] = FailureReason.INTERNAL_ERROR


class MalformedUploadError(PhotoError):
    """The message is not a PhotoUploaded this code can read."""

    reason = FailureReason.MALFORMED_EVENT


class BlobMissingError(PhotoError):
    """The bytes are not where the event says (or the URI is not allowed)."""

    reason = FailureReason.BLOB_MISSING


class BlobTooLargeError(PhotoError):
    """The bytes are larger than the configured limit."""

    reason = FailureReason.BLOB_TOO_LARGE


class BlobChecksumError(PhotoError):
    """The bytes do not match the event's content_sha256."""

    reason = FailureReason.BLOB_CHECKSUM_MISMATCH


class BlobStoreUnavailableError(PhotoError):
    """The object store did not answer, or refused Darkroom's credentials, after every retry.

    Nothing is wrong with the photo: re-drive the dead letter once the store answers again."""

    reason = FailureReason.BLOB_STORE_UNAVAILABLE


class UnsupportedFormatError(PhotoError):
    """The bytes are not an image format Darkroom decodes."""

    reason = FailureReason.UNSUPPORTED_FORMAT


class CorruptImageError(PhotoError):
    """The bytes claim a known format but do not decode (truncated, damaged, empty)."""

    reason = FailureReason.CORRUPT_IMAGE


class ImageTooLargeError(PhotoError):
    """The header declares more pixels than the configured limit (a decompression bomb?)."""

    reason = FailureReason.IMAGE_TOO_LARGE


class DegenerateImageError(PhotoError):
    """Geometry no model can use: a side too short, or an absurd aspect ratio (1x100000)."""

    reason = FailureReason.DEGENERATE_IMAGE


class ImageTooComplexError(PhotoError):
    """The encoding would cost far more than its size suggests (e.g. thousands of scans)."""

    reason = FailureReason.IMAGE_TOO_COMPLEX


class DeadlineExceededError(PhotoError):
    """The photo took longer than its per-photo deadline; the others did not wait for it."""

    reason = FailureReason.DEADLINE_EXCEEDED


class OutputTooLargeError(PhotoError):
    """The enriched event would exceed the largest message the producer may send."""

    reason = FailureReason.OUTPUT_TOO_LARGE


class InferenceError(PhotoError):
    """A model failed on this photo (alone, not merely somewhere in its batch)."""

    reason = FailureReason.INFERENCE_ERROR


class UserErasedError(PhotoError):
    """The upload's user was erased before it (a UserErased came first): it is refused."""

    reason = FailureReason.USER_ERASED


class PhotoDeletedError(PhotoError):
    """The photo was deleted before this upload of it arrived (a retry, a replay)."""

    reason = FailureReason.PHOTO_DELETED
