"""What Darkroom derives from a photo (thumbnails) stored beside it: in the photo's own store.

    assets = AssetStore(blobs, prefix=".assets", attempts=3)
    uri = assets.put(AssetWrite(upload["blob"], user, photo, "256.webp", data, "image/webp"))
    assets.put_many([...])             # a batch's, at the same time: each its URI or its error
    assets.forget(user, photo)         # a deleted photo's assets; forget(user, None): a user's

A photo in ``s3://bucket/...`` gets its assets in the same bucket, at
``<prefix>/<user>/<photo>/<name>``; a photo under the blob root (or inline in its event) under
``<root>/<prefix>/<user>/<photo>/<name>``. The keys are deterministic, so enriching a photo
again (a replay, a redelivery after a crash) overwrites the same objects instead of leaving
orphans, and forgetting needs no record of what was written.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import obstore

from streams.blobs.files import path_component, write_atomically
from streams.blobs.integrity import BlobStoreError
from streams.blobs.s3 import parse_s3_uri
from streams.blobs.store import Blob, BlobStore
from streams.config import Settings
from streams.errors import BlobStoreUnavailableError


@dataclass(frozen=True)
class AssetWrite:
    """One asset to store for one photo."""

    near: Blob  # the photo's PhotoUploaded ``blob``: where its store is
    user_id: str
    photo_id: str
    name: str  # "256.webp"
    data: bytes
    content_type: str


class AssetStore:
    """Writes and forgets assets beside their photos (see the module doc)."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        attempts: int = 3,
        backoff_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.blobs, self.prefix = blobs, prefix
        self.attempts, self.backoff_s, self.sleep = attempts, backoff_s, sleep
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings, blobs: BlobStore) -> AssetStore:
        """The asset store ``settings.blobs`` configures, over ``blobs``."""
        return cls(blobs, settings.blobs.assets_prefix, settings.blobs.asset_write_attempts)

    def folder(self, user_id: str, photo_id: str | None = None) -> str:
        """``<prefix>/<user>/<photo>`` (``<prefix>/<user>`` without a photo), each id one path
        component (see path_component): no id can reach another's assets."""
        user = f"{self.prefix}/{path_component(user_id)}"
        return user if photo_id is None else f"{user}/{path_component(photo_id)}"

    def put(self, write: AssetWrite) -> str:
        """Store one asset; its URI, or BlobStoreError naming the last failure. A file is
        tried ``attempts`` times; an S3 upload once, as S3Store retries each request itself
        (``s3_max_attempts``), and tries of tries would hold a batch for minutes."""
        attempts = 1 if _bucket_of(write.near) is not None else self.attempts
        last: Exception | None = None
        for tried in range(1, attempts + 1):
            try:
                return self._put_once(write)
            except (BlobStoreError, BlobStoreUnavailableError, OSError) as exc:
                last = exc
            if tried < attempts:
                self.sleep(self.backoff_s * 2 ** (tried - 1))
        raise BlobStoreError(
            f"{write.name} of {write.photo_id} not stored in {attempts} tries: {last}"
        )

    def put_many(self, writes: Sequence[AssetWrite]) -> list[str | Exception]:
        """``put`` each of ``writes`` at the same time; each result its URI or its error."""
        if len(writes) <= 1:
            return [self._attempt(w) for w in writes]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.blobs.concurrency, thread_name_prefix="darkroom-assets"
            )
        return list(self._pool.map(self._attempt, writes))

    def _attempt(self, write: AssetWrite) -> str | Exception:
        try:
            return self.put(write)
        except Exception as exc:  # this asset's failure, not the batch's
            return exc

    def _put_once(self, write: AssetWrite) -> str:
        bucket = _bucket_of(write.near)
        folder = self.folder(write.user_id, write.photo_id)
        if bucket is not None:
            s3 = self.blobs.s3
            assert s3 is not None  # the photo was fetched from this bucket a moment ago
            key = f"{folder}/{write.name}"
            s3.put(bucket, key, write.data, write.content_type)
            return f"s3://{bucket}/{key}"
        root = self.blobs.root
        return write_atomically(root / folder, write.name, write.data, root, "an asset")

    def forget(self, user_id: str, photo_id: str | None) -> int:
        """Delete a photo's assets (``photo_id`` None: every asset of the user) wherever they
        can be: under the blob root and in every served bucket. How many objects went (a
        folder counts one); none there is no error, so forgetting twice is harmless."""
        prefix = self.folder(user_id, photo_id)
        removed = 0
        folder = self.blobs.root / prefix
        if folder.is_dir() and folder.resolve() == folder:  # never follow a planted symlink
            shutil.rmtree(folder)
            removed += 1
        s3 = self.blobs.s3
        if s3 is not None:
            for bucket in sorted(s3.buckets):
                store = s3.stores(bucket)
                keys = [meta["path"] for page in obstore.list(store, prefix) for meta in page]
                if keys:
                    obstore.delete(store, keys)
                    removed += len(keys)
        return removed

    def left(self, user_id: str, photo_id: str | None) -> list[str]:
        """The URIs of what is stored for the photo (``photo_id`` None: for the user) wherever
        it can be: what ``forget`` would remove (`darkroom forget --verify`)."""
        prefix = self.folder(user_id, photo_id)
        folder = self.blobs.root / prefix
        found = sorted(p.as_uri() for p in folder.rglob("*") if p.is_file())
        s3 = self.blobs.s3
        if s3 is not None:
            for bucket in sorted(s3.buckets):
                pages = obstore.list(s3.stores(bucket), prefix)
                found += sorted(f"s3://{bucket}/{meta['path']}" for page in pages for meta in page)
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _bucket_of(blob: Blob) -> str | None:
    uri: Any = blob.get("uri")
    if isinstance(uri, str) and uri.startswith("s3://"):
        return parse_s3_uri(uri)[0]
    return None
