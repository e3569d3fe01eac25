"""Checkpoints on disk: round trip, and every bad file a clear error (no broker here)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from streams.config import TopicSettings
from streams.errors import OperationError
from streams.replay import checkpoint as checkpoint_module
from streams.replay.checkpoint import Checkpoint, CheckpointWriteError
from streams.replay.positions import PartitionRange
from streams.replay.request import ReplayRequest
from streams.replay.selection import ReplayUsageError
from streams.replay.targets import topic_types


def request(checkpoint: Path, **options: object) -> ReplayRequest:
    return ReplayRequest.from_options(
        topic="photos.uploaded",
        out="out.jsonl",
        checkpoint=checkpoint,
        types=topic_types(TopicSettings()),
        **options,  # type: ignore[arg-type]
    )


def saved(path: Path) -> Checkpoint:
    ranges = [PartitionRange(0, 0, 5, 0, 5), PartitionRange(2, 3, 9, 0, 9)]
    checkpoint = Checkpoint.new(request(path), "abc", ranges)
    checkpoint.next_offsets[2] = 4
    checkpoint.begin()
    return checkpoint


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    saved(path)
    loaded = Checkpoint.load(request(path))
    assert (loaded.replay_id, loaded.ranges, loaded.next_offsets) == (
        "abc",
        {0: (0, 5), 2: (3, 9)},
        {2: 4},
    )
    assert json.loads(path.read_text())["request"] == request(path).identity
    assert [r.partition for r in loaded.partition_ranges([0, 1, 2, 3])] == [0, 2]  # 1, 3: newer
    with pytest.raises(ReplayUsageError, match=r"is for partitions \[2\] that this replay"):
        loaded.partition_ranges([0, 1])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_checkpoint_of_another_replay_says_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    saved(path)
    with pytest.raises(ReplayUsageError) as caught:
        Checkpoint.load(request(path, from_time="-2h", user="u" * 500))
    message = str(caught.value)
    assert "belongs to another replay (--from-time was None, --user was None)" in message
    assert len(message) < 250


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '"a string"',
        '{"request": 1}',
        '{"request": {}, "replay_id": 7, "ranges": {}}',
        '{"request": {}, "replay_id": "r", "ranges": {"0": [5, 1]}}',
        '{"request": {}, "replay_id": "r", "ranges": {"0": "x"}}',
        '{"request": {}, "replay_id": "r", "ranges": []}',
        '{"request": {}, "replay_id": "r", "ranges": {}, "next_offsets": [1]}',
        '{"request": {}, "replay_id": "r", "ranges": {}, "next_offsets": {"a": 1}}',
        '{"request": {}, "replay_id": "r", "ranges": {"0": [0, 9223372036854775808]}}',
        "not json",
        "[" * 100_000,  # deeper than json's recursion
    ],
)
def test_a_file_that_is_not_a_checkpoint(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(text)
    with pytest.raises(ReplayUsageError, match=r"is not a checkpoint$"):
        Checkpoint.load(request(path))


def test_unreadable_and_missing_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ReplayUsageError, match="is not a checkpoint"):
        Checkpoint.load(request(path))
    with pytest.raises(ReplayUsageError, match="no checkpoint at"):
        Checkpoint.load(request(tmp_path / "none.json"))
    folder = tmp_path / "folder"
    folder.mkdir()
    # dataclasses.replace skips from_options, which would refuse a directory itself
    fake = dataclasses.replace(request(tmp_path / "x.json"), checkpoint=folder)
    with pytest.raises(ReplayUsageError, match=r"cannot read .*: Is a directory"):
        Checkpoint.load(fake)


def test_a_checkpoint_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ReplayUsageError, match="a-file is not a folder"):
        request(tmp_path / "a-file" / "cp.json")
    with pytest.raises(ReplayUsageError, match=r"typo does not exist .*not made for you"):
        request(tmp_path / "typo" / "cp.json")
    assert not (tmp_path / "typo").exists()
    folder = tmp_path / "gone"
    folder.mkdir()
    checkpoint = Checkpoint.new(request(folder / "cp.json"), "abc", [])
    folder.rmdir()  # removed under the replay: not made again either
    with pytest.raises(ReplayUsageError, match=r"cannot write the checkpoint .*--checkpoint FILE"):
        checkpoint.begin()  # before anything is read: the arguments are at fault
    with pytest.raises(CheckpointWriteError, match="cannot write the checkpoint") as caught:
        checkpoint.save()  # mid-run: the replay failed
    assert isinstance(caught.value, OperationError)
    assert not folder.exists()


def test_a_file_too_large_to_be_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "MAX_BYTES", 100)
    path = tmp_path / "cp.json"
    path.write_text(json.dumps({"request": {}, "padding": "x" * 100}))
    with pytest.raises(ReplayUsageError, match=r"is not a checkpoint$"):
        Checkpoint.load(request(path))
