"""The blob store: round trips, limits, checksums, and URIs it must refuse."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from streams.blobs import BlobStore, BlobStoreError, sha256_hex
from streams.errors import (
    BlobChecksumError,
    BlobMissingError,
    BlobTooLargeError,
    FailureReason,
)


def _path_of(uri: str) -> Path:
    return Path(unquote(urlsplit(uri).path))


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


# --- what get() opens: only regular files, without blocking, within the limit ---


def _get_in_thread(store: BlobStore, uri: str, unblock: Path | None = None) -> BaseException | None:
    """``store.get(uri)`` in a thread, so a get that blocks fails the test instead of hanging it."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            store.get(uri)
            outcome.append(None)
        except BaseException as exc:  # handed to the test to assert on
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive() and unblock is not None:
        # a writer that opens and closes the FIFO gives the stuck reader EOF, freeing the thread
        os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
        pytest.fail(f"get({uri}) blocked on a FIFO")
    assert not thread.is_alive(), f"get({uri}) blocked"
    return outcome[0]


def test_a_fifo_is_blob_missing_and_does_not_block(store: BlobStore) -> None:
    fifo = store.root / "u" / "pipe.jpg"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    error = _get_in_thread(store, fifo.as_uri(), unblock=fifo)
    assert isinstance(error, BlobMissingError)
    assert "FIFO" in str(error)


def test_a_device_node_is_blob_missing(store: BlobStore) -> None:
    # /dev/null rather than /dev/zero: if this regresses, reading /dev/zero would eat all memory
    node = store.root / "u" / "null.jpg"
    node.parent.mkdir(parents=True)
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    error = _get_in_thread(store, node.as_uri())
    assert isinstance(error, BlobMissingError)
    assert "character device" in str(error)


def test_a_socket_is_blob_missing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "b", max_bytes=1000)  # short: AF_UNIX paths are at most 107 bytes
    path = store.root / "s.jpg"
    store.root.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(BlobMissingError, match="socket"):
            store.get(path.as_uri())


def test_a_directory_is_blob_missing(store: BlobStore) -> None:
    folder = store.root / "u" / "album.jpg"
    folder.mkdir(parents=True)
    with pytest.raises(BlobMissingError, match="directory"):
        store.get(folder.as_uri())


def test_a_symlink_loop_is_blob_missing(store: BlobStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "a.jpg").symlink_to(store.root / "b.jpg")
    (store.root / "b.jpg").symlink_to(store.root / "a.jpg")
    with pytest.raises(BlobMissingError):
        store.get((store.root / "a.jpg").as_uri())


@pytest.mark.parametrize(
    ("make_uri", "message"),
    [
        (lambda uri: uri.replace("ph_1", "ph_1%00"), "NUL"),
        (lambda uri: uri.replace("ph_1", "ph_1\0"), "NUL"),
        (lambda uri: uri.replace("file://", "file://otherhost"), "host"),
        (lambda uri: uri.replace("file://", "file://[::1"), "not a valid"),
        (lambda _uri: "file://", "no path"),
        (lambda _uri: "file:", "no path"),
        (lambda _uri: "file:ph_1.jpg", "absolute"),
        (lambda uri: f"{uri}?v=2", "query"),
        (lambda uri: f"{uri}#top", "query"),
    ],
    ids=["nul%00", "nul", "other-host", "bad-host", "empty", "bare", "relative", "query", "frag"],
)
def test_odd_uris_are_blob_missing(
    store: BlobStore, make_uri: Callable[[str], str], message: str
) -> None:
    uri = make_uri(store.put("u", "ph_1", b"bytes", ".jpg"))
    with pytest.raises(BlobMissingError, match=message) as info:
        store.get(uri)
    assert info.value.reason is FailureReason.BLOB_MISSING


def test_localhost_is_this_machine(store: BlobStore) -> None:
    uri = store.put("u", "ph_1", b"bytes", ".jpg")
    assert store.get(uri.replace("file://", "file://localhost")) == b"bytes"


def test_a_file_that_grows_after_its_size_check_is_too_large(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store.put("u", "growing", b"x" * 500, ".jpg")
    path = _path_of(uri)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        with path.open("ab") as handle:  # another writer appends between the check and the read
            handle.write(b"x" * 5000)
        return result

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    with pytest.raises(BlobTooLargeError, match="limit"):
        store.get(uri)


# --- where put() writes: always one folder and one file directly under the root ---


@pytest.mark.parametrize("user_id", ["..", ".", "", "../..", ".hidden", "a/../../b", "u" * 300])
def test_put_stays_inside_the_root_whatever_the_user_id(store: BlobStore, user_id: str) -> None:
    uri = store.put(user_id, "ph_1", b"bytes", ".jpg")
    path = _path_of(uri)
    assert path.parent.parent == store.root
    assert all(len(part.encode()) <= 255 for part in path.parts)
    assert store.get(uri) == b"bytes"


@pytest.mark.parametrize("photo_id", ["..", ".", "", "../x", "p" * 300])
def test_put_stays_inside_the_root_whatever_the_photo_id(store: BlobStore, photo_id: str) -> None:
    uri = store.put("u", photo_id, b"bytes", ".jpg")
    path = _path_of(uri)
    assert path.parent == store.root / "u"
    assert path.suffix == ".jpg" and len(path.name.encode()) <= 255
    assert store.get(uri) == b"bytes"


def test_distinct_ids_get_distinct_files(store: BlobStore) -> None:
    ids = ["..", ".", "", "%2E%2E", "%2E", ".a", "%2Ea", "u" * 300, "u" * 301, "u" * 299 + "v"]
    uris = {store.put(user, "ph_1", user.encode(), ".jpg") for user in ids}
    assert len(uris) == len(ids)
    for user in ids:
        assert store.get(store.put(user, "ph_1", user.encode(), ".jpg")) == user.encode()


def test_put_refuses_a_user_folder_that_is_a_symlink_out_of_the_root(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "mallory").symlink_to(outside)
    with pytest.raises(BlobStoreError):
        store.put("mallory", "ph_1", b"bytes", ".jpg")
    assert list(outside.iterdir()) == []


def test_a_file_in_the_way_of_a_user_folder_is_a_store_error(store: BlobStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "u").write_bytes(b"not a folder")
    with pytest.raises(BlobStoreError, match="cannot store a photo"):
        store.put("u", "ph_1", b"bytes", ".jpg")
