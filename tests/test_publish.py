"""Path collection for `publish`: files, folders, globs, and every problem reported."""

from __future__ import annotations

from pathlib import Path

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
