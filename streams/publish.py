"""Publish photos as PhotoUploaded events: validate every path first, then send, then account.

Nothing is sent until every path has been checked, so a typo never leaves half a batch published.
Once sending starts, every photo ends as delivered (with partition and offset) or failed (with the
error): a file that cannot be read any more (deleted, replaced, grown past the limit) fails alone,
flush waits for every delivery report, and a report that never comes counts as a failure.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from streams.blobs import BlobWriter, read_regular_file, sha256_hex
from streams.contracts.codec import Codec
from streams.contracts.events import new_upload, photo_id_for
from streams.contracts.schemas import EventType
from streams.errors import DarkroomError, UnsupportedFormatError, UsageError
from streams.imaging.sniff import SNIFF_BYTES, ImageFormat, require_image


class InvalidUserIdError(UsageError):
    """A user id that cannot be a Kafka key and an event's user_id."""


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is usable; InvalidUserIdError saying why not.

    Any non-empty text is: its blob folder name is encoded (streams.blobs.path_component), so
    '..', '/' or a 300-character id cannot escape the blob root or overflow a file name. Only
    text that has no UTF-8 form (an undecodable folder name or argument) is refused.
    """
    if not user_id:
        raise InvalidUserIdError("the user id must not be empty")
    try:
        user_id.encode()
    except UnicodeEncodeError:
        raise InvalidUserIdError(f"user id {user_id!r} is not valid UTF-8 text") from None
    return user_id


@dataclass(frozen=True)
class PhotoFile:
    """A file that was checked to be an image."""

    path: Path
    format: ImageFormat
    size: int


@dataclass(frozen=True)
class PathProblem:
    """Why an argument of `publish` cannot be published."""

    argument: str
    message: str


@dataclass(frozen=True)
class Delivered:
    """A photo whose event the broker acknowledged."""

    file: PhotoFile
    photo_id: str
    user_id: str
    partition: int
    offset: int
    inline: bool


@dataclass(frozen=True)
class NotDelivered:
    """A photo whose event was not acknowledged, and why."""

    file: PhotoFile
    error: str


@dataclass
class PublishReport:
    """Every photo of a publish run, accounted for."""

    delivered: list[Delivered] = field(default_factory=list)
    failed: list[NotDelivered] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Delivered photos per second."""
        return len(self.delivered) / self.seconds if self.seconds > 0 else 0.0


def collect(arguments: Sequence[str]) -> tuple[list[PhotoFile], list[PathProblem]]:
    """Expand files, folders (recursively) and globs; sniff each file; report every problem."""
    files: dict[Path, PhotoFile] = {}
    problems: list[PathProblem] = []
    for argument in arguments:
        paths, empty_because = _expand(argument)
        if empty_because is not None:
            problems.append(PathProblem(argument, empty_because))
        for path in paths:
            try:
                files.setdefault(path.resolve(), _check(path))
            except (UnsupportedFormatError, OSError) as exc:
                problems.append(PathProblem(str(path), str(exc)))
    return list(files.values()), problems


def _expand(argument: str) -> tuple[list[Path], str | None]:
    """The files ``argument`` names, or none and why."""
    if glob.has_magic(argument):
        matches = [Path(m) for m in sorted(glob.glob(argument, recursive=True))]  # noqa: PTH207
    else:
        matches = [Path(argument)] if Path(argument).exists() else []
    if not matches:
        return [], "no such file or directory"
    expanded: list[Path] = []
    for path in matches:
        if path.is_dir():
            expanded.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not _hidden(p))
        elif path.is_file():
            expanded.append(path)
    if expanded:
        return expanded, None
    if all(path.is_dir() for path in matches):
        return [], "no photos in this folder or its sub-folders (hidden files are skipped)"
    return [], "not a regular file (a FIFO, device or socket?)"


def _hidden(path: Path) -> bool:
    return any(part.startswith(".") for part in path.parts[-1:])


def _check(path: Path) -> PhotoFile:
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return PhotoFile(path, require_image(head, "file"), path.stat().st_size)


def default_user(path: Path) -> str:
    """The user a photo is published for when --user is not given: its folder's name."""
    return path.resolve().parent.name or "anonymous"


class Publisher:
    """Sends PhotoUploaded events for checked files and waits for every delivery report."""

    def __init__(
        self,
        producer: Producer,
        codec: Codec,
        blobs: BlobWriter,
        topic: str,
        inline_max_bytes: int,
        delivery_timeout_s: float = 30.0,
    ) -> None:
        self.producer = producer
        self.codec = codec
        self.blobs = blobs
        self.topic = topic
        self.inline_max_bytes = inline_max_bytes
        self.delivery_timeout_s = delivery_timeout_s

    def publish(
        self,
        files: Iterable[PhotoFile],
        user: str | None = None,
        inline: bool = False,
        on_done: Callable[[PhotoFile, bool], None] = lambda _f, _ok: None,
    ) -> PublishReport:
        """Publish ``files``; ``on_done(file, ok)`` is called once per photo as reports arrive.

        On KeyboardInterrupt the photos already sent are still flushed and accounted for, the
        ones not yet sent are reported as not delivered, and the interrupt is re-raised with
        the report attached as ``exc.report``.
        """
        report = PublishReport()
        pending: list[PhotoFile] = list(files)
        started = time.monotonic()
        sent = 0
        try:
            for file in pending:
                self._send(file, user, inline, report, on_done)
                sent += 1
                self.producer.poll(0)
        except KeyboardInterrupt as interrupt:
            self._drain(report, on_done, sent, pending)
            for file in pending[sent:]:
                report.failed.append(NotDelivered(file, "not sent: interrupted"))
            report.seconds = time.monotonic() - started
            interrupt.report = report  # type: ignore[attr-defined]
            raise
        self._drain(report, on_done, sent, pending)
        report.seconds = time.monotonic() - started
        return report

    def _send(
        self,
        file: PhotoFile,
        user: str | None,
        inline: bool,
        report: PublishReport,
        on_done: Callable[[PhotoFile, bool], None],
    ) -> None:
        try:
            value, user_id, photo_id, as_inline = self._prepare(file, user, inline)
        except DarkroomError as exc:  # this file's problem, or the blob root's: the rest go on
            report.failed.append(NotDelivered(file, str(exc)))
            on_done(file, False)
            return

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                report.failed.append(NotDelivered(file, err.str()))
            else:
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None  # set on every delivery
                report.delivered.append(
                    Delivered(file, photo_id, user_id, partition, offset, as_inline)
                )
            on_done(file, err is None)

        while True:
            try:
                self.producer.produce(
                    self.topic, value=value, key=user_id.encode(), on_delivery=delivered
                )
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.1)

    def _prepare(
        self, file: PhotoFile, user: str | None, inline: bool
    ) -> tuple[bytes, str, str, bool]:
        """The encoded event for ``file``: (value, user id, photo id, inline?).

        The file was checked by ``collect`` but is read only now, maybe minutes later: it may
        have been deleted, replaced (by a directory, a FIFO, another format) or have grown. So
        it is read like a blob (never blocking, bounded by the size limit the worker enforces),
        sniffed again, and the event describes the bytes actually read.
        """
        data = read_regular_file(file.path, self.blobs.max_bytes, "the file", follow_symlinks=True)
        image_format = require_image(data[:SNIFF_BYTES], "the file")
        user_id = check_user_id(user if user is not None else default_user(file.path))
        digest = sha256_hex(data)
        photo_id = photo_id_for(user_id, digest)
        as_inline = inline and len(data) <= self.inline_max_bytes
        blob: str | bytes = (
            data if as_inline else self.blobs.put(user_id, photo_id, data, image_format.extension)
        )
        event = new_upload(
            photo_id=photo_id,
            user_id=user_id,
            content_type=image_format.mime,
            byte_size=len(data),
            blob=blob,
            content_sha256=digest,
            filename=file.path.name,
        )
        return self.codec.encode(EventType.PHOTO_UPLOADED, event), user_id, photo_id, as_inline

    def _drain(
        self,
        report: PublishReport,
        on_done: Callable[[PhotoFile, bool], None],
        sent: int,
        files: list[PhotoFile],
    ) -> None:
        """Wait for every delivery report; a report that never comes is a failure."""
        deadline = time.monotonic() + self.delivery_timeout_s
        while len(report.delivered) + len(report.failed) < sent and time.monotonic() < deadline:
            self.producer.flush(0.2)
        accounted = {id(r.file) for r in report.delivered} | {id(r.file) for r in report.failed}
        for file in files[:sent]:
            if id(file) not in accounted:
                report.failed.append(
                    NotDelivered(file, f"no delivery report within {self.delivery_timeout_s:g} s")
                )
                on_done(file, False)
