"""One blob store for the worker, replay and publish: routes each URI to the store of its scheme.

    blobs = BlobStore.from_settings(settings)
    blobs.fetch(upload["blob"], upload["content_sha256"])   # inline bytes, file:// or s3://
    blobs.fetch_many([(blob, sha), ...])                    # a batch, fetched concurrently
    blobs.writer("s3://bucket/prefix").put(user, photo, data, ".jpg")   # publish

A batch's photos are fetched at the same time (``fetch_concurrency`` threads): against an
object store a batch of 16 then costs about one round trip, not 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from streams.blobs.files import FileStore
from streams.blobs.integrity import check_size, verify_checksum
from streams.blobs.s3 import S3Store, parse_s3_uri
from streams.config import Settings
from streams.errors import BlobMissingError, UsageError

Blob = dict[str, Any]  # a PhotoUploaded ``blob`` field: {"data": bytes} or {"uri": str}


class BlobWriter(Protocol):
    """Where `publish` stores photos: returns the URI a worker reads the photo back from."""

    max_bytes: int

    def put(self, user_id: str, photo_id: str, data: bytes, extension: str) -> str:
        """Store ``data`` for this user and photo; BlobStoreError when it cannot."""
        ...


class BlobStore:
    """The photo bytes behind upload events: inline, ``file://`` under the root, ``s3://``."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        s3: S3Store | None = None,
        concurrency: int = 16,
    ) -> None:
        self.files = FileStore(root, max_bytes)
        self.s3 = s3
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        """The blob store ``settings`` configure."""
        blobs = settings.blobs
        s3 = S3Store.from_settings(settings) if blobs.s3_buckets else None
        return cls(blobs.root, blobs.max_bytes, s3, blobs.fetch_concurrency)

    @property
    def root(self) -> Path:
        """The folder file:// URIs must name files under."""
        return self.files.root

    def put(self, user_id: str, photo_id: str, data: bytes, extension: str) -> str:
        """Store ``data`` under the blob root (see FileStore.put); returns its file:// URI."""
        return self.files.put(user_id, photo_id, data, extension)

    def writer(self, destination: str | None) -> BlobWriter:
        """Where `publish --to DESTINATION` stores photos: None = the blob root, or
        ``s3://bucket/prefix`` (the bucket must be one the workers serve)."""
        if destination is None:
            return self.files
        if not destination.startswith("s3://"):
            raise UsageError(f"--to {destination!r}: give s3://bucket/prefix (or leave it out)")
        if self.s3 is None:
            raise UsageError(
                f"--to {destination}: no bucket is served; list it in DARKROOM_BLOBS_S3_BUCKETS "
                "(the workers need it there too)"
            )
        return self.s3.writer(destination)

    def get(self, uri: str, expected_sha256: str | None = None) -> bytes:
        """The bytes behind ``uri``, checked against the size limit and the checksum."""
        if uri.startswith("s3://"):
            if self.s3 is None:
                bucket = parse_s3_uri(uri)[0]
                raise BlobMissingError(
                    f"{uri}: bucket {bucket!r} is not served (DARKROOM_BLOBS_S3_BUCKETS is empty)"
                )
            return self.s3.get(uri, expected_sha256)
        return self.files.get(uri, expected_sha256)

    def fetch(self, blob: Blob, expected_sha256: str | None) -> bytes:
        """The bytes of a PhotoUploaded ``blob`` field: inline data or a URI, both checked."""
        if "data" in blob:
            data: bytes = blob["data"]
            check_size(len(data), self.max_bytes, "inline photo")
            verify_checksum(data, expected_sha256, "inline photo")
            return data
        return self.get(str(blob["uri"]), expected_sha256)

    def fetch_many(self, wanted: Sequence[tuple[Blob, str | None]]) -> list[bytes | Exception]:
        """``fetch`` for each of ``wanted`` at the same time; each result is the bytes or the
        exception that photo alone failed with (a PhotoError, or anything unforeseen)."""
        if len(wanted) <= 1 or all("data" in blob for blob, _ in wanted):
            return [self._attempt(blob, sha) for blob, sha in wanted]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="darkroom-fetch")
        return list(self._pool.map(lambda item: self._attempt(*item), wanted))

    def _attempt(self, blob: Blob, expected_sha256: str | None) -> bytes | Exception:
        try:
            return self.fetch(blob, expected_sha256)
        except Exception as exc:  # this photo's failure (typed or unforeseen), not the batch's
            return exc

    def close(self) -> None:
        """Stop the fetch threads (they also end with the process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
