"""Photo bytes by reference: inline in the event, a file under the blob root, or an object in
S3-compatible storage. ``BlobStore`` is the one entry point; the stores behind it apply the
same checks (size limit before reading everything, SHA-256 when the event carries one)."""

from streams.blobs.files import FileStore, path_component, read_regular_file
from streams.blobs.integrity import BlobStoreError, sha256_hex, verify_checksum
from streams.blobs.s3 import S3Store
from streams.blobs.store import BlobStore, BlobWriter

__all__ = [
    "BlobStore",
    "BlobStoreError",
    "BlobWriter",
    "FileStore",
    "S3Store",
    "path_component",
    "read_regular_file",
    "sha256_hex",
    "verify_checksum",
]
