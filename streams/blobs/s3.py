"""Photos in S3 or an S3-compatible store (MinIO, Ceph), addressed by ``s3://bucket/key``.

An event names a bucket and a key, never a host: the endpoint comes from the settings, and only
the buckets listed there are served. Requests go through obstore (Rust's object_store): it
spent a quarter to two-fifths of boto3's client CPU per GET, at better throughput
(benchmarks/s3_clients.py, docs/storage.md), and that CPU is taken from decoding and
inference. Credentials come from boto3's standard chain (environment, shared profile, SSO, web
identity, instance role), which obstore alone lacks profiles for.

Every request has a connect, a read and an overall timeout, and is tried at most
``s3_max_attempts`` times with jittered exponential backoff: one retry loop here (obstore's own
is off), so the bound is the same for GETs, PUTs and the bytes of a body. Objects are checked
like files: size from the response headers before the body is read, the body read up to the
limit, then SHA-256.
"""

from __future__ import annotations

import mimetypes
import random
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import boto3
import obstore
from obstore.auth.boto3 import Boto3CredentialProvider
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store as ObjectStore

from streams.blobs.files import path_component
from streams.blobs.integrity import BlobStoreError, check_size, verify_checksum
from streams.config import Settings
from streams.errors import (
    BlobMissingError,
    BlobStoreUnavailableError,
    BlobTooLargeError,
    UsageError,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig
    from typing_extensions import Buffer

T = TypeVar("T")
Stores = Callable[[str], ObjectStore]  # bucket -> its obstore store

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CHUNK = 1 << 20  # bytes a body is read in: the limit is enforced chunk by chunk


class NoCredentialsError(UsageError):
    """s3:// is configured, but the standard chain finds no credentials."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; the key is taken verbatim (as the AWS CLI does:
    no percent-decoding, '?' and '#' are part of it). BlobMissingError when it is not one."""
    if not uri.startswith("s3://"):
        raise BlobMissingError(f"{uri!r} is not an s3:// URI")
    bucket, slash, key = uri[len("s3://") :].partition("/")
    if not slash or not key:
        raise BlobMissingError(f"{uri!r} names no key (s3://bucket/key)")
    if not _BUCKET.fullmatch(bucket):
        raise BlobMissingError(f"{uri!r}: {bucket!r} is not a valid bucket name")
    if "\0" in key or len(key.encode("utf-8", "surrogatepass")) > 1024:
        raise BlobMissingError(f"{uri!r}: not a valid object key (NUL, or over 1024 bytes)")
    # S3 allows these, but obstore's paths drop a leading or trailing '/' (measured: "/a.jpg"
    # fetched "a.jpg") and refuse the rest: refused here, so no key ever reads another object
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise BlobMissingError(
            f"{uri!r}: keys with an empty, '.' or '..' segment (a leading, trailing or doubled "
            "'/') are not served"
        )
    return bucket, key


def object_stores(settings: Settings, session: boto3.session.Session | None = None) -> Stores:
    """One obstore store per served bucket, for ``settings.blobs`` (endpoint, region,
    timeouts), signing with the credentials of ``session`` (default: the standard chain)."""
    blobs = settings.blobs
    session = session or boto3.session.Session()
    try:
        credentials = Boto3CredentialProvider(session)
    except ValueError:  # boto3 found none anywhere in its chain
        raise NoCredentialsError(
            "s3:// is configured (DARKROOM_BLOBS_S3_BUCKETS) but no AWS credentials were found: "
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role"
        ) from None
    client: ClientConfig = {
        "connect_timeout": timedelta(seconds=blobs.s3_connect_timeout_s),
        "read_timeout": timedelta(seconds=blobs.s3_read_timeout_s),
        "timeout": timedelta(seconds=blobs.s3_request_timeout_s),
        "pool_max_idle_per_host": str(blobs.fetch_concurrency),
    }
    region = blobs.s3_region or session.region_name or "us-east-1"
    endpoint: dict[str, str] = {}
    if blobs.s3_endpoint:
        endpoint = {"endpoint": blobs.s3_endpoint}
        client["allow_http"] = blobs.s3_endpoint.startswith("http://")
    stores = {
        bucket: ObjectStore(
            bucket,
            region=region,
            client_options=client,
            retry_config={"max_retries": 0},  # retried in S3Store._retrying
            credential_provider=credentials,
            **endpoint,  # type: ignore[arg-type]
        )
        for bucket in blobs.s3_buckets
    }
    return stores.__getitem__


class S3Store:
    """GETs (and `publish`'s PUTs) against the configured endpoint, for the allowed buckets."""

    def __init__(
        self,
        stores: Stores,
        buckets: set[str],
        max_bytes: int,
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.1,
        multipart_threshold: int = 8 * 1024 * 1024,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stores = stores
        self.buckets = buckets
        self.max_bytes = max_bytes
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.multipart_threshold = multipart_threshold
        self.sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, session: boto3.session.Session | None = None
    ) -> S3Store:
        """A store for ``settings.blobs``; NoCredentialsError when there are none."""
        blobs = settings.blobs
        return cls(
            object_stores(settings, session),
            set(blobs.s3_buckets),
            blobs.max_bytes,
            max_attempts=blobs.s3_max_attempts,
            multipart_threshold=blobs.s3_multipart_threshold_bytes,
        )

    def get(self, uri: str, expected_sha256: str | None = None) -> bytes:
        """The object's bytes, checked against the size limit and the checksum.

        BlobMissingError: no such object, or a bucket not served. BlobTooLargeError: over the
        limit (known from the headers; the body is not read). BlobStoreUnavailableError: the
        store did not answer within every attempt, or refused the credentials."""
        bucket, key = self._served(uri)
        data = self._retrying(uri, lambda: self._get_once(bucket, key, uri))
        verify_checksum(data, expected_sha256, uri)
        return data

    def writer(self, destination: str) -> S3Writer:
        """Where `publish --to s3://bucket/prefix` puts photos."""
        bucket, _, prefix = destination[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        try:
            self._served(f"s3://{bucket}/{prefix}/x" if prefix else f"s3://{bucket}/x")
        except BlobMissingError as exc:  # the operator's to fix before anything is sent
            raise UsageError(f"--to {destination}: {exc}") from None
        return S3Writer(self, bucket, prefix)

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Upload ``data`` (in parts from ``multipart_threshold`` on); BlobStoreError if the
        store does not take it within every attempt."""
        uri = f"s3://{bucket}/{key}"

        def once() -> None:
            obstore.put(
                self.stores(bucket),
                key,
                data,
                attributes={"Content-Type": content_type},
                use_multipart=len(data) >= self.multipart_threshold,
                chunk_size=self.multipart_threshold,
                max_concurrency=1,  # publish uploads one photo at a time, its parts in order
            )

        try:
            self._retrying(uri, once)
        except (BlobMissingError, BlobStoreUnavailableError) as exc:
            raise BlobStoreError(f"cannot upload {uri}: {exc}") from None

    def _served(self, uri: str) -> tuple[str, str]:
        bucket, key = parse_s3_uri(uri)
        if bucket not in self.buckets:
            raise BlobMissingError(
                f"{uri}: bucket {bucket!r} is not served (DARKROOM_BLOBS_S3_BUCKETS lists "
                f"{sorted(self.buckets)})"
            )
        return bucket, key

    def _get_once(self, bucket: str, key: str, uri: str) -> bytes:
        result = obstore.get(self.stores(bucket), key)  # the headers: the body is not read yet
        check_size(result.meta["size"], self.max_bytes, uri)
        chunks: list[Buffer] = []  # obstore's buffers, copied once, by join
        size = 0
        for chunk in result.stream(min_chunk_size=_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:  # the headers said less than the body held
                raise BlobTooLargeError(f"{uri} is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _retrying(self, uri: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` until it succeeds, fails for good, or ``max_attempts`` are spent."""
        last = ""
        for tried in range(1, self.max_attempts + 1):
            try:
                return attempt()
            except FileNotFoundError:
                raise BlobMissingError(f"{uri} does not exist") from None
            except ValueError as exc:  # a key obstore cannot address (parse_s3_uri refuses most)
                raise BlobMissingError(f"{uri}: {_first_line(exc)}") from None
            except (PermissionDeniedError, UnauthenticatedError) as exc:
                raise BlobStoreUnavailableError(
                    f"{uri}: the store refused Darkroom's credentials ({_s3_code(exc)}); "
                    "fix them or the bucket policy, then re-drive"
                ) from None
            except BaseError as exc:  # timeouts, refused connections, 5xx, throttling
                last = _first_line(exc)
            if tried < self.max_attempts:
                self.sleep(self.backoff_s * 2 ** (tried - 1) * random.uniform(0.5, 1.5))
        raise BlobStoreUnavailableError(
            f"{uri}: the store did not answer in {self.max_attempts} attempts (last: {last}); "
            "safe to re-drive"
        )


def _s3_code(exc: Exception) -> str:
    """The S3 error code inside obstore's message (<Code>InvalidAccessKeyId</Code>...)."""
    found = re.search(r"<Code>([^<]+)</Code>", str(exc))
    return found.group(1) if found else type(exc).__name__


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


class S3Writer:
    """`publish --to s3://bucket/prefix`: each photo at <prefix>/<user>/<photo><ext>."""

    def __init__(self, store: S3Store, bucket: str, prefix: str) -> None:
        self.store, self.bucket, self.prefix = store, bucket, prefix
        self.max_bytes = store.max_bytes

    def put(self, user_id: str, photo_id: str, data: bytes, extension: str) -> str:
        """Upload ``data``; returns its s3:// URI. BlobStoreError when the upload fails."""
        # the same one-component-per-id names as under the blob root: ids cannot add levels
        name = f"{path_component(user_id)}/{path_component(photo_id, extension)}"
        key = f"{self.prefix}/{name}" if self.prefix else name
        content_type = mimetypes.types_map.get(extension, "application/octet-stream")
        self.store.put(self.bucket, key, data, content_type)
        return f"s3://{self.bucket}/{key}"
