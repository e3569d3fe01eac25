"""Path collection for `publish`: files, folders, globs, and every problem reported."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
import pytest

from streams.blobs import BlobStore, sha256_hex
from streams.config import load_settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.imaging.sniff import ImageFormat
from streams.publish import (
    InvalidUserIdError,
    Publisher,
    PublishReport,
    check_user_id,
    collect,
    default_user,
)
from tests.photos import write_photos


def test_folders_globs_and_files_are_expanded_once(tmp_path: Path) -> None:
    paths = write_photos(tmp_path, {"a": 2, "b": 1})
    (tmp_path / "a" / ".hidden.jpg").write_bytes(paths[0].read_bytes())
    files, problems = collect([str(tmp_path), str(tmp_path / "a" / "*.jpg"), str(paths[2])])
    assert problems == []
    assert sorted(f.path.name for f in files) == ["photo-00.jpg", "photo-00.jpg", "photo-01.jpg"]
    assert all(f.format is ImageFormat.JPEG and f.size > 0 for f in files)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    files, problems = collect(
        [str(tmp_path / "missing"), str(tmp_path / "*.none"), str(tmp_path / "notes.txt")]
    )
    assert files == []
    assert [p.message.split(" (")[0] for p in problems] == [
        "no such file or directory",
        "no such file or directory",
        "file is not a recognised image",
    ]


def test_default_user_is_the_folder_name(tmp_path: Path) -> None:
    assert default_user(tmp_path / "alice" / "x.jpg") == "alice"


def test_the_bytes_decide_the_format_not_the_extension(tmp_path: Path) -> None:
    (jpeg,) = write_photos(tmp_path, {"u": 1})
    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    assert ok
    misnamed = tmp_path / "u" / "really-a-png.jpg"
    misnamed.write_bytes(png.tobytes())
    files, problems = collect([str(misnamed), str(jpeg)])
    assert problems == []
    assert {f.path.name: f.format for f in files} == {
        "really-a-png.jpg": ImageFormat.PNG,
        "photo-00.jpg": ImageFormat.JPEG,
    }


def test_an_empty_folder_says_it_has_no_photos(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "hidden-only").mkdir()
    (tmp_path / "hidden-only" / ".x.jpg").write_bytes(b"\xff\xd8\xff")
    files, problems = collect([str(tmp_path / "empty"), str(tmp_path / "hidden-only")])
    assert files == []
    assert [p.message for p in problems] == [
        "no photos in this folder or its sub-folders (hidden files are skipped)"
    ] * 2


def test_a_fifo_argument_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    files, problems = collect([str(tmp_path / "pipe.jpg")])
    assert files == []
    assert [p.message for p in problems] == ["not a regular file (a FIFO, device or socket?)"]


# --- sending: files are read only after every one was checked, and may have changed since ---


class FakeProducer:
    """Acknowledges every message at once, like a broker that never fails."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self._reports: list[Callable[[None, Any], None]] = []

    def produce(
        self, topic: str, value: bytes, key: bytes, on_delivery: Callable[[None, Any], None]
    ) -> None:
        self.messages.append((key, value))
        self._reports.append(on_delivery)

    def poll(self, _timeout: float = 0) -> int:
        return self.flush()

    def flush(self, _timeout: float = 0) -> int:
        while self._reports:
            offset = len(self.messages) - len(self._reports)
            self._reports.pop(0)(
                None, SimpleNamespace(partition=lambda: 0, offset=lambda o=offset: o)
            )
        return 0


@pytest.fixture
def codec() -> SingleObjectCodec:
    return SingleObjectCodec(SchemaRepository(load_settings().paths.schemas))


def _publisher(tmp_path: Path, codec: SingleObjectCodec, max_bytes: int = 10**6) -> Publisher:
    blobs = BlobStore(tmp_path / "blobs", max_bytes=max_bytes)
    return Publisher(FakeProducer(), codec, blobs, "uploads", inline_max_bytes=0)  # type: ignore[arg-type]


def _events(publisher: Publisher, codec: SingleObjectCodec) -> list[dict[str, Any]]:
    producer: FakeProducer = publisher.producer  # type: ignore[assignment]
    return [codec.decode(value).record for _key, value in producer.messages]


def _in_thread(call: Callable[[], PublishReport], fifo: Path) -> PublishReport:
    """Run ``call`` in a thread, so a read that blocks on ``fifo`` fails the test, not hangs it."""
    result: list[PublishReport] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():
        # a writer that opens and closes the FIFO gives the stuck reader EOF, freeing the thread
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=10)
        pytest.fail("publish blocked on a FIFO")
    return result[0]


def test_files_that_changed_after_the_check_are_not_delivered_and_the_rest_are(
    tmp_path: Path, codec: SingleObjectCodec
) -> None:
    paths = write_photos(tmp_path / "photos", {"u": 6})
    files, problems = collect([str(tmp_path / "photos")])
    assert problems == [] and len(files) == 6
    paths[0].unlink()  # deleted
    paths[1].unlink()
    paths[1].mkdir()  # became a directory
    paths[2].write_bytes(b"now some text")  # no longer an image
    limit = max(f.size for f in files)
    paths[3].write_bytes(b"\xff\xd8\xff" + b"x" * limit)  # grew past the limit
    publisher = _publisher(tmp_path, codec, max_bytes=limit)
    done: list[tuple[Path, bool]] = []
    report = publisher.publish(files, on_done=lambda f, ok: done.append((f.path, ok)))
    failed = {f.file.path: f.error for f in report.failed}
    assert failed == {
        paths[0]: "the file does not exist",
        paths[1]: "the file is a directory, not a regular file",
        paths[2]: failed[paths[2]],
        paths[3]: f"the file is {limit + 3} bytes; the limit is {limit}",
    }
    assert failed[paths[2]].startswith("the file is not a recognised image")
    assert sorted(d.file.path for d in report.delivered) == paths[4:]
    assert sorted(done) == sorted([(p, False) for p in paths[:4]] + [(p, True) for p in paths[4:]])


def test_a_file_that_became_unreadable_is_not_delivered(
    tmp_path: Path, codec: SingleObjectCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    files, _ = collect([str(path)])
    real_open = os.open

    def open_as_someone_else(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(name) == path:  # chmod 000 would not do: the tests may run as root
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_as_someone_else)
    report = _publisher(tmp_path, codec).publish(files)
    assert [f.error for f in report.failed] == ["cannot read the file: Permission denied"]


def test_a_file_replaced_by_a_fifo_is_not_delivered_and_does_not_block(
    tmp_path: Path, codec: SingleObjectCodec
) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    files, _ = collect([str(path)])
    path.unlink()
    os.mkfifo(path)
    report = _in_thread(lambda: _publisher(tmp_path, codec).publish(files), fifo=path)
    assert [f.error for f in report.failed] == [
        "the file is a FIFO (named pipe), not a regular file"
    ]


def test_the_event_describes_the_bytes_read_not_the_bytes_checked(
    tmp_path: Path, codec: SingleObjectCodec
) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    files, _ = collect([str(path)])
    ok, png = cv2.imencode(".png", np.full((8, 8, 3), 200, np.uint8))
    assert ok
    path.write_bytes(png.tobytes())  # rewritten, as another format and size, after the check
    publisher = _publisher(tmp_path, codec)
    report = publisher.publish(files)
    assert report.failed == []
    (event,) = _events(publisher, codec)
    assert event["byte_size"] == len(png.tobytes()) != files[0].size
    assert event["content_sha256"] == sha256_hex(png.tobytes())
    assert event["content_type"] == "image/png" and event["blob"]["uri"].endswith(".png")
    assert publisher.blobs.get(event["blob"]["uri"], event["content_sha256"]) == png.tobytes()


@pytest.mark.parametrize("user", ["..", ".", "../../etc", "u" * 300])
def test_any_user_id_is_stored_inside_the_blob_root_and_kept_whole_in_the_event(
    tmp_path: Path, codec: SingleObjectCodec, user: str
) -> None:
    (path,) = write_photos(tmp_path, {"u": 1})
    files, _ = collect([str(path)])
    publisher = _publisher(tmp_path, codec)
    report = publisher.publish(files, user=user)
    assert report.failed == []
    (event,) = _events(publisher, codec)
    assert event["user_id"] == user
    blob = Path(unquote(urlsplit(event["blob"]["uri"]).path))
    assert blob.parent.parent == publisher.blobs.root
    assert publisher.blobs.get(event["blob"]["uri"]) == path.read_bytes()


def test_user_ids_without_a_utf8_form_are_refused(tmp_path: Path, codec: SingleObjectCodec) -> None:
    assert check_user_id("zoë") == "zoë"
    for bad in ("", "caf\udce9"):  # \udce9: a Latin-1 byte of an undecodable folder name
        with pytest.raises(InvalidUserIdError):
            check_user_id(bad)
    (path,) = write_photos(tmp_path, {"u": 1})
    files, _ = collect([str(path)])
    report = _publisher(tmp_path, codec).publish(files, user="caf\udce9")
    assert [f.error for f in report.failed] == ["user id 'caf\\udce9' is not valid UTF-8 text"]


def test_a_blob_root_that_cannot_be_written_fails_each_photo_not_the_run(
    tmp_path: Path, codec: SingleObjectCodec
) -> None:
    paths = write_photos(tmp_path / "photos", {"u": 2})
    files, _ = collect([str(tmp_path / "photos")])
    publisher = _publisher(tmp_path, codec)
    publisher.blobs.root.write_bytes(b"a file where the blob root should be")
    report = publisher.publish(files)
    assert sorted(f.file.path for f in report.failed) == paths
    assert all(f.error.startswith("cannot store a photo under") for f in report.failed)
