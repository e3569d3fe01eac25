"""What every store shares: the checks on bytes read (size limit, SHA-256) and the error for
bytes that cannot be written."""

from __future__ import annotations

import hashlib

from streams.errors import BlobChecksumError, BlobTooLargeError, OperationError


class BlobStoreError(OperationError):
    """A photo cannot be stored (a folder not writable or full, a bucket refusing the upload)."""


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_checksum(data: bytes, expected_sha256: str | None, what: str) -> None:
    """BlobChecksumError when ``expected_sha256`` is given and does not match."""
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256.lower():
        raise BlobChecksumError(f"{what}: SHA-256 does not match the event's content_sha256")


def check_size(size: int, max_bytes: int, what: str) -> None:
    """BlobTooLargeError when ``size`` is over the limit (checked before reading the bytes)."""
    if size > max_bytes:
        raise BlobTooLargeError(f"{what} is {size} bytes; the limit is {max_bytes}")
