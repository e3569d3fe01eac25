"""The blob store: round trips, limits, checksums, and URIs it must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.blobs import BlobStore, sha256_hex
from streams.errors import (
    BlobChecksumError,
    BlobMissingError,
    BlobTooLargeError,
    FailureReason,
)


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes=1000)


def test_put_get_round_trip_with_checksum(store: BlobStore) -> None:
    uri = store.put("user/with:odd chars", "ph_1", b"jpeg bytes", ".jpg")
    assert uri.startswith("file://") and uri.endswith("ph_1.jpg")
    assert store.get(uri, sha256_hex(b"jpeg bytes")) == b"jpeg bytes"
    assert not list(store.root.rglob(".incoming-*"))  # no temp file left behind


def test_missing_and_foreign_uris_are_blob_missing(store: BlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    for uri in (
        store.root.joinpath("nope.jpg").as_uri(),
        secret.as_uri(),
        "s3://bucket/key",
        (store.root / ".." / "secret.txt").as_uri(),
    ):
        with pytest.raises(BlobMissingError) as info:
            store.get(uri)
        assert info.value.reason is FailureReason.BLOB_MISSING


def test_too_large_and_checksum_mismatch(store: BlobStore) -> None:
    big = store.put("u", "big", b"x" * 1001, ".jpg")
    with pytest.raises(BlobTooLargeError, match="limit is 1000"):
        store.get(big)
    small = store.put("u", "small", b"abc", ".jpg")
    with pytest.raises(BlobChecksumError):
        store.get(small, sha256_hex(b"abd"))
