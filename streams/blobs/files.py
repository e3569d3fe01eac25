"""Photos in a folder of this machine: written under the blob root, read back by file:// URI.

Only ``file://`` URIs of this machine, naming a regular file under the configured root, are
served, so an event cannot make a worker read an arbitrary file, nor block it on a FIFO or a
device.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from streams.blobs.integrity import BlobStoreError, check_size, verify_checksum
from streams.errors import BlobMissingError, BlobTooLargeError

NAME_MAX = 255  # bytes in one path component on ext4, xfs, btrfs, tmpfs, APFS, NTFS
# quote() writes '%' only before two hex digits, so no spelled-out name contains this marker:
# a hashed name can never equal the name of another id.
_HASHED = "%~"


class FileStore:
    """A folder of photos addressed by file:// URIs."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes

    def put(self, user_id: str, photo_id: str, data: bytes, extension: str) -> str:
        """Store ``data`` atomically as <root>/<user>/<photo><ext>; returns its file:// URI.

        Each id becomes exactly one path component (see ``path_component``), so no id can climb
        out of the root or into another user's folder. BlobStoreError when it cannot be written.
        """
        folder = self.root / path_component(user_id)
        name = path_component(photo_id, quote(extension, safe="."))
        return write_atomically(folder, name, data, self.root, "a photo")

    def get(self, uri: str, expected_sha256: str | None = None) -> bytes:
        """The bytes behind ``uri``, checked against the size limit and the checksum."""
        data = read_regular_file(self._path_of(uri), self.max_bytes, uri)
        verify_checksum(data, expected_sha256, uri)
        return data

    def _path_of(self, uri: str) -> Path:
        """The resolved path ``uri`` names under the root; BlobMissingError for anything else."""
        if "\0" in uri:
            raise BlobMissingError(f"blob URI {uri!r} contains a NUL byte")
        try:
            parsed = urlsplit(uri)
        except ValueError as exc:  # e.g. an unclosed '[' in the host
            raise BlobMissingError(f"{uri!r} is not a valid URI: {exc}") from None
        if parsed.scheme != "file":
            raise BlobMissingError(f"unsupported blob URI scheme {parsed.scheme!r} in {uri!r}")
        if parsed.netloc not in ("", "localhost"):
            raise BlobMissingError(
                f"{uri!r} names host {parsed.netloc!r}; only this machine's files are served"
            )
        if parsed.query or parsed.fragment:
            raise BlobMissingError(f"{uri!r} has a query or fragment; a blob URI names a file")
        raw = unquote(parsed.path, errors="surrogateescape")
        if not raw:
            raise BlobMissingError(f"{uri!r} has no path")
        if "\0" in raw:
            raise BlobMissingError(f"blob URI {uri!r} contains an encoded NUL byte")
        if not raw.startswith("/"):
            raise BlobMissingError(f"{uri!r} is not an absolute file:// URI")
        try:
            path = Path(raw).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise BlobMissingError(f"cannot resolve {uri}: {exc}") from None
        if not path.is_relative_to(self.root):
            raise BlobMissingError(f"{uri} is outside the blob root {self.root}")
        return path


def write_atomically(folder: Path, name: str, data: bytes, root: Path, what: str) -> str:
    """``data`` as ``folder``/``name`` (folders made as needed), all or nothing: readers see the
    old file or the new one, never part of it; returns its file:// URI. BlobStoreError ("cannot
    store ``what`` under ``root``") when it cannot be written, or when a folder on the way is a
    symlink (it would send the write elsewhere)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.resolve() != folder:
            raise BlobStoreError(f"{folder} is not a folder of its own under {root}")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    except OSError as exc:
        raise BlobStoreError(f"cannot store {what} under {root}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        target = folder / name
        Path(tmp).replace(target)  # rename replaces a symlink at target, never follows it
    except OSError as exc:  # e.g. the disk is full
        Path(tmp).unlink(missing_ok=True)
        raise BlobStoreError(f"cannot store {what} under {root}: {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target.as_uri()


def path_component(text: str, suffix: str = "") -> str:
    """One file name for ``text`` + ``suffix``: never '', '.', '..', hidden, or over NAME_MAX.

    Ids are percent-encoded (so '/' cannot split them) with a leading '.' encoded too. An id
    that would be empty or too long keeps a readable prefix and adds its SHA-256, so the full
    id stays in the event and the Kafka key while its file name fits every filesystem.
    Distinct ids always get distinct names.
    """
    name = quote(text.encode("utf-8", "surrogatepass"), safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]  # quote() never writes '%2E' itself: this stays unambiguous
    if not name or len(name) + len(suffix) > NAME_MAX:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        keep = name[: NAME_MAX - len(suffix) - len(_HASHED) - len(digest)]
        escape = keep.rfind("%", len(keep) - 2)
        if escape != -1:  # do not cut a %XX escape in half
            keep = keep[:escape]
        name = f"{keep}{_HASHED}{digest}"
    return name + suffix


_CHUNK = 1 << 16
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def read_regular_file(
    path: Path, max_bytes: int, what: str, *, follow_symlinks: bool = False
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Opening never blocks (a FIFO would wait for a writer forever), and nothing but a regular
    file is read: a FIFO, device, socket or directory is BlobMissingError, as is any error
    opening or reading it. More than ``max_bytes`` is BlobTooLargeError, even when the file
    grows after its size was checked. ``what`` names the file in messages.
    """
    try:
        # refuse before opening: opening a device can have effects of its own (tapes, watchdogs)
        mode = path.stat().st_mode if follow_symlinks else path.lstat().st_mode
        _require_regular(mode, what)
        # O_NOFOLLOW: ``path`` was resolved, so a symlink here was swapped in since
        fd = os.open(path, _OPEN_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW))
    except OSError as exc:
        raise BlobMissingError(_cannot_read(what, exc)) from None
    try:
        status = os.fstat(fd)  # what was opened, which may not be what was checked above
        _require_regular(status.st_mode, what)
        check_size(status.st_size, max_bytes, what)
        os.set_blocking(fd, True)  # a regular file: reads may wait on a slow disk, not forever
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            # one read for the size fstat saw, plus a byte to see it grew; never past the limit
            want = min(max_bytes + 1 - size, max(status.st_size + 1 - size, _CHUNK))
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise BlobMissingError(_cannot_read(what, exc)) from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise BlobTooLargeError(f"{what} grew past the limit of {max_bytes} bytes while read")
    return b"".join(chunks)


def _require_regular(mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
        stat.S_ISLNK: "a symlink (swapped in after its path was resolved)",
    }
    kind = next((name for test, name in kinds.items() if test(mode)), "an unknown kind of file")
    raise BlobMissingError(f"{what} is {kind}, not a regular file")


def _cannot_read(what: str, exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"{what} does not exist"
    return f"cannot read {what}: {exc.strerror or exc}"
