"""Photo bytes by reference: write them under the blob root, read them back by URI.

Only ``file://`` URIs under the configured root are served, so an event cannot make a worker
read an arbitrary file. Other schemes (``s3://``) plug in at ``BlobStore.get``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from streams.errors import BlobChecksumError, BlobMissingError, BlobTooLargeError


class BlobStore:
    """A folder of photos addressed by file:// URIs."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes

    def put(self, user_id: str, photo_id: str, data: bytes, extension: str) -> str:
        """Store ``data`` atomically as <root>/<user>/<photo><ext>; returns its file:// URI."""
        folder = self.root / quote(user_id, safe="")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{quote(photo_id, safe='')}{extension}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.as_uri()

    def get(self, uri: str, expected_sha256: str | None = None) -> bytes:
        """The bytes behind ``uri``, checked against the size limit and the checksum."""
        path = self._path_of(uri)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise BlobTooLargeError(f"{uri} is {size} bytes; the limit is {self.max_bytes}")
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobMissingError(f"no photo at {uri}") from None
        except PermissionError as exc:
            raise BlobMissingError(f"cannot read {uri}: {exc.strerror}") from None
        verify_checksum(data, expected_sha256, uri)
        return data

    def fetch(self, blob: dict[str, Any], expected_sha256: str | None) -> bytes:
        """The bytes of a PhotoUploaded ``blob`` field: inline data or a URI, both checked."""
        if "data" in blob:
            data: bytes = blob["data"]
            if len(data) > self.max_bytes:
                raise BlobTooLargeError(
                    f"inline photo is {len(data)} bytes; the limit is {self.max_bytes}"
                )
            verify_checksum(data, expected_sha256, "inline photo")
            return data
        return self.get(str(blob["uri"]), expected_sha256)

    def _path_of(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise BlobMissingError(f"unsupported blob URI scheme {parsed.scheme!r} in {uri!r}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise BlobMissingError(f"{uri} is outside the blob root {self.root}")
        return path


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_checksum(data: bytes, expected_sha256: str | None, what: str) -> None:
    """BlobChecksumError when ``expected_sha256`` is given and does not match."""
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256.lower():
        raise BlobChecksumError(f"{what}: SHA-256 does not match the event's content_sha256")
