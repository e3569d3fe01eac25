"""s3:// blobs against a real S3-compatible server on 127.0.0.1 (moto's, see s3server.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from streams.blobs import BlobStore, BlobStoreError, S3Store, sha256_hex
from streams.blobs.s3 import NoCredentialsError
from streams.config import Settings
from streams.errors import (
    BlobChecksumError,
    BlobMissingError,
    BlobStoreUnavailableError,
    BlobTooLargeError,
    FailureReason,
    UsageError,
)
from tests.blobs.proxy import FreezingProxy
from tests.blobs.s3server import LocalS3
from tests.conftest import SILENT_STORE, s3_settings


def bucket_of(settings: Settings) -> str:
    return settings.blobs.s3_buckets[0]


def through(settings: Settings, proxy: FreezingProxy, **blobs: object) -> BlobStore:
    """A blob store for ``settings`` that reads through ``proxy``."""
    changed = settings.blobs.model_copy(update={"s3_endpoint": proxy.endpoint, **blobs})
    return BlobStore.from_settings(settings.model_copy(update={"blobs": changed}))


@pytest.fixture
def proxy(local_s3: LocalS3) -> Iterator[FreezingProxy]:
    server = FreezingProxy(local_s3.port)
    yield server
    server.close()


def test_publish_writer_and_get_round_trip(s3: Settings) -> None:
    blobs = BlobStore.from_settings(s3)
    uri = blobs.writer(f"s3://{bucket_of(s3)}/uploads/").put("user/1", "ph 1", b"jpeg", ".jpg")
    # one key level per id, whatever the ids contain (as under the blob root)
    assert uri == f"s3://{bucket_of(s3)}/uploads/user%2F1/ph%201.jpg"
    assert blobs.get(uri, sha256_hex(b"jpeg")) == b"jpeg"
    assert blobs.fetch({"uri": uri}, None) == b"jpeg"


def test_a_large_photo_is_uploaded_in_parts(s3: Settings, local_s3: LocalS3) -> None:
    blobs = BlobStore.from_settings(s3)  # threshold: 8 MiB by default
    data = bytes(range(256)) * (9 * 4096)  # 9 MiB
    uri = blobs.writer(f"s3://{bucket_of(s3)}").put("u", "p", data, ".png")
    head = local_s3.client().head_object(Bucket=bucket_of(s3), Key="u/p.png")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    assert head["ContentType"] == "image/png"
    assert blobs.get(uri, sha256_hex(data)) == data


def test_missing_key_wrong_checksum_and_oversize(s3: Settings, local_s3: LocalS3) -> None:
    bucket = bucket_of(s3)
    local_s3.client().put_object(Bucket=bucket, Key="a.jpg", Body=b"abc")
    blobs = BlobStore.from_settings(s3)
    with pytest.raises(BlobMissingError, match="does not exist") as missing:
        blobs.get(f"s3://{bucket}/nope.jpg")
    assert missing.value.reason is FailureReason.BLOB_MISSING
    with pytest.raises(BlobChecksumError):
        blobs.get(f"s3://{bucket}/a.jpg", sha256_hex(b"abd"))
    small = s3.model_copy(update={"blobs": s3.blobs.model_copy(update={"max_bytes": 2})})
    with pytest.raises(BlobTooLargeError, match="3 bytes; the limit is 2"):
        BlobStore.from_settings(small).get(f"s3://{bucket}/a.jpg")


def test_an_oversize_object_is_refused_from_its_headers(
    s3: Settings, local_s3: LocalS3, proxy: FreezingProxy
) -> None:
    bucket = bucket_of(s3)
    local_s3.client().put_object(Bucket=bucket, Key="huge.jpg", Body=b"x" * (16 << 20))
    blobs = through(s3, proxy, max_bytes=1000)
    with pytest.raises(BlobTooLargeError, match="16777216 bytes"):
        blobs.get(f"s3://{bucket}/huge.jpg")
    # Its body was not read. The server still pushes what the loopback buffers of both hops
    # hold before the client hangs up: 1.4 MB seen in CI, so the bound is half the object.
    assert proxy.response_bytes < 8 << 20


def test_only_configured_buckets_are_served(s3: Settings, proxy: FreezingProxy) -> None:
    blobs = through(s3, proxy)
    for uri, message in (
        ("s3://elsewhere/key.jpg", "not served"),
        ("s3://Not_A_Bucket/key.jpg", "not a valid bucket name"),
        (f"s3://{bucket_of(s3)}", "names no key"),
        (f"s3://{bucket_of(s3)}/", "names no key"),
        # S3 allows these keys; obstore would fetch "a.jpg" for the first: never served
        (f"s3://{bucket_of(s3)}//a.jpg", "segment"),
        (f"s3://{bucket_of(s3)}/a//b.jpg", "segment"),
        (f"s3://{bucket_of(s3)}/a/../b.jpg", "segment"),
        (f"s3://{bucket_of(s3)}/a/", "segment"),
    ):
        with pytest.raises(BlobMissingError, match=message):
            blobs.get(uri)
    assert proxy.requests == []  # refused before any request: an event picks no host or bucket
    with pytest.raises(BlobMissingError, match="not served"):
        BlobStore.from_settings(s3.model_copy(update={"blobs": Settings().blobs})).get(
            "s3://any/key"
        )


def test_publish_refuses_a_bucket_the_workers_do_not_serve(s3: Settings) -> None:
    blobs = BlobStore.from_settings(s3)
    with pytest.raises(UsageError, match="not served"):
        blobs.writer("s3://elsewhere/prefix")
    with pytest.raises(UsageError, match="s3://bucket/prefix"):
        blobs.writer("gs://bucket/prefix")
    with pytest.raises(UsageError, match="DARKROOM_BLOBS_S3_BUCKETS"):
        BlobStore.from_settings(Settings()).writer("s3://bucket/prefix")


def test_an_upload_the_store_refuses_is_a_store_error(s3: Settings) -> None:
    missing = s3_settings(s3, s3.blobs.s3_endpoint or "", ["no-such-bucket-here"])
    writer = BlobStore.from_settings(missing).writer("s3://no-such-bucket-here/p")
    with pytest.raises(BlobStoreError, match="cannot upload"):
        writer.put("u", "p", b"jpeg", ".jpg")


def test_a_silent_store_is_unavailable_after_bounded_retries(
    s3: Settings, local_s3: LocalS3
) -> None:
    bucket = bucket_of(s3)
    local_s3.client().put_object(Bucket=bucket, Key="a.jpg", Body=b"abc")
    silent = FreezingProxy(local_s3.port, hang=lambda line: True)
    try:
        blobs = through(s3, silent, **SILENT_STORE)  # 2 attempts, 1 s read timeout each
        with pytest.raises(BlobStoreUnavailableError, match="did not answer in 2 attempts") as info:
            blobs.get(f"s3://{bucket}/a.jpg")
        assert info.value.reason is FailureReason.BLOB_STORE_UNAVAILABLE
        assert len(silent.hung) == 2  # each attempt was a request of its own
    finally:
        silent.close()


def test_a_request_that_gets_no_answer_is_tried_again(s3: Settings, local_s3: LocalS3) -> None:
    bucket = bucket_of(s3)
    local_s3.client().put_object(Bucket=bucket, Key="a.jpg", Body=b"abc")
    seen: list[bytes] = []

    def first_time_only(line: bytes) -> bool:
        seen.append(line)
        return len(seen) == 1

    flaky = FreezingProxy(local_s3.port, hang=first_time_only)
    try:
        assert through(s3, flaky, **SILENT_STORE).get(f"s3://{bucket}/a.jpg") == b"abc"
        assert len(flaky.hung) == 1 and len(flaky.requests) == 2
    finally:
        flaky.close()


def test_refused_credentials_are_unavailable_not_missing(tmp_path: Path) -> None:
    # a server of its own: checking credentials is switched on for the whole server
    server = LocalS3(tmp_path / "moto.log").start()
    try:
        access_key, secret_key = server.enforce_credentials(bucket="guarded")
        server.client(access_key, secret_key).put_object(Bucket="guarded", Key="a.jpg", Body=b"abc")
        settings = s3_settings(Settings(), server.endpoint, ["guarded"])

        def store(secret: str) -> BlobStore:
            session = boto3.session.Session(
                aws_access_key_id=access_key, aws_secret_access_key=secret
            )
            s3 = S3Store.from_settings(settings, session)
            return BlobStore(tmp_path / "blobs", settings.blobs.max_bytes, s3)

        assert store(secret_key).get("s3://guarded/a.jpg") == b"abc"  # the right keys work
        with pytest.raises(BlobStoreUnavailableError, match="SignatureDoesNotMatch") as info:
            store("not-the-secret").get("s3://guarded/a.jpg")
        assert info.value.reason is FailureReason.BLOB_STORE_UNAVAILABLE
    finally:
        server.stop()


def test_no_credentials_anywhere_is_a_setup_error(
    s3: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    with pytest.raises(NoCredentialsError, match="no AWS credentials"):
        BlobStore.from_settings(s3)


def test_a_batch_is_fetched_concurrently_and_a_silent_photo_fails_alone(
    s3: Settings, local_s3: LocalS3
) -> None:
    bucket = bucket_of(s3)
    client = local_s3.client()
    for i in range(16):
        client.put_object(Bucket=bucket, Key=f"p{i}.jpg", Body=f"photo {i}".encode())
    # all 16 requests must be in flight at once to pass the gate: sequential GETs never would
    gated = FreezingProxy(local_s3.port, gate=16)
    try:
        blobs = through(s3, gated)
        wanted = [({"uri": f"s3://{bucket}/p{i}.jpg"}, None) for i in range(16)]
        assert blobs.fetch_many(wanted) == [f"photo {i}".encode() for i in range(16)]
    finally:
        gated.close()
    silent_on_3 = FreezingProxy(local_s3.port, hang=lambda line: b"/p3.jpg " in line)
    try:
        started = time.monotonic()
        results = through(s3, silent_on_3, **SILENT_STORE).fetch_many(wanted)
        took = time.monotonic() - started
    finally:
        silent_on_3.close()
    assert isinstance(results[3], BlobStoreUnavailableError)
    assert [r for i, r in enumerate(results) if i != 3] == [
        f"photo {i}".encode() for i in range(16) if i != 3
    ]
    assert took < 10  # two 1 s timeouts and a backoff, not a stalled batch
