"""--out: a file that cannot be written is an OperationError, and resumes append cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.errors import OperationError
from streams.replay.sinks import ExportSink, ExportWriteError, SourceMessage


def message(partition: int, offset: int) -> SourceMessage:
    return SourceMessage("t", partition, offset, b"k", b"raw", [], None)


def test_a_full_disk_is_an_operation_error_on_flush_and_close() -> None:
    sink = ExportSink("/dev/full", resume=False)
    sink.write(message(0, 0))  # buffered
    with pytest.raises(ExportWriteError, match=r"^cannot write /dev/full: No space left") as caught:
        sink.flush()
    assert isinstance(caught.value, OperationError)
    with pytest.raises(ExportWriteError):
        sink.close()
    assert sink.handle.closed  # closed all the same


def test_a_file_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "out.jsonl"
    with pytest.raises(ExportWriteError, match=f"^cannot write {target}: "):
        ExportSink(str(target), resume=False)
    with pytest.raises(ExportWriteError, match="Is a directory"):
        ExportSink(str(tmp_path), resume=False)


def test_resume_drops_a_line_cut_short(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text('{"partition": 0, "offset": 4}\n{"partition": 0, "offset": 5, "ke')
    sink = ExportSink(str(target), resume=True)
    assert sink.written_through() == {0: 4}  # offset 5 was not written whole
    sink.write(message(0, 5))
    sink.close()
    lines = target.read_text().splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [4, 5]  # not glued to the cut one


def test_resume_ignores_lines_that_are_not_rows(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    rows = [{"partition": 1, "offset": 2}, [1], {"partition": "x"}, {"offset": 3}]
    text = "".join(json.dumps(r) + "\n" for r in rows) + "[" * 100_000 + "\n"
    target.write_bytes(text.encode() + b"\xff not utf-8\n")
    assert ExportSink(str(target), resume=True).written_through() == {1: 2}
