"""Path collection for `publish`: files, folders, globs, and every problem reported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streams.imaging.sniff import ImageFormat
from streams.publish import collect, default_user
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
