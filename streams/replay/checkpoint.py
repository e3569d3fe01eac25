"""A replay's progress on disk, so `--resume` continues after a crash or Ctrl-C.

The file holds the request's identity (a resume must select the same thing), the replay id
(written into every output's headers), the ranges fixed at the first run and, per partition,
the next offset to read. It is rewritten atomically after each batch whose outputs are
acknowledged; on resume the sink is also asked what it already holds from this replay id, which
covers a crash between the acknowledgement and the rewrite.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import OperationError
from streams.replay.positions import PartitionRange
from streams.replay.request import CHECKPOINT_DIR, ReplayRequest
from streams.replay.selection import ReplayUsageError, shorten

# a checkpoint holds a few numbers per partition; a larger file is something else
MAX_BYTES = 16 * 1024 * 1024
# offsets are signed 64-bit in Kafka (and in TopicPartition)
MAX_OFFSET = 2**63 - 1


class CheckpointWriteError(OperationError):
    """The checkpoint could not be rewritten mid-run (it still says where the last one was)."""


@dataclass
class Checkpoint:
    """Where a replay is."""

    path: Path
    replay_id: str
    identity: dict[str, Any]  # ReplayRequest.identity; saved as "request"
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # fixed at the first run
    next_offsets: dict[int, int] = field(default_factory=dict)

    @classmethod
    def new(
        cls, request: ReplayRequest, replay_id: str, ranges: Iterable[PartitionRange]
    ) -> Checkpoint:
        """The checkpoint of a replay starting now (not saved yet)."""
        fixed = {r.partition: (r.start, r.end) for r in ranges}
        return cls(request.checkpoint_path, replay_id, request.identity, fixed)

    def begin(self) -> None:
        """The first save, before anything is read: a path that cannot be written is a
        mistake in the arguments, not a failure of the replay."""
        try:
            self._write()
        except OSError as exc:
            raise ReplayUsageError(
                f"cannot write the checkpoint {self.path}: {_reason(exc, self.path)} "
                "(choose another with --checkpoint FILE)"
            ) from None

    def save(self) -> None:
        """Write atomically (temp file + rename)."""
        try:
            self._write()
        except OSError as exc:
            raise CheckpointWriteError(
                f"cannot write the checkpoint {self.path}: {_reason(exc, self.path)}"
            ) from None

    def _write(self) -> None:
        if self.path.parent == CHECKPOINT_DIR:  # ours to make; a --checkpoint folder is not
            CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
        payload = {
            "replay_id": self.replay_id,
            "request": self.identity,
            "ranges": {str(p): list(r) for p, r in self.ranges.items()},
            "next_offsets": {str(p): o for p, o in self.next_offsets.items()},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".checkpoint-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
            Path(tmp).replace(self.path)
        except BaseException:
            with contextlib.suppress(OSError):  # the error that matters is the one raised
                Path(tmp).unlink(missing_ok=True)
            raise

    def partition_ranges(self, chosen: Iterable[int]) -> list[PartitionRange]:
        """The ranges of the first run, in partition order. A partition added to the topic
        since is not part of this replay (its selection was fixed then, as its end was); one
        the checkpoint has and the selection does not means it is not this replay's."""
        wanted = set(chosen)
        foreign = sorted(set(self.ranges) - wanted)
        if foreign:
            raise ReplayUsageError(
                f"--resume: {self.path} is for partitions {foreign[:5]} that this replay does "
                "not select; resume with the same arguments, or start over without --resume"
            )
        return [
            PartitionRange(p, start, end, start, end)
            for p, (start, end) in sorted(self.ranges.items())
            if p in wanted
        ]

    @classmethod
    def load(cls, request: ReplayRequest) -> Checkpoint:
        """The request's saved checkpoint; ReplayUsageError if missing, unreadable, not a
        checkpoint, or one of another request."""
        path = request.checkpoint_path
        not_one = f"--resume: {path} is not a checkpoint"
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise ValueError("too large")
            payload = json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            raise ReplayUsageError(f"--resume: no checkpoint at {path}") from None
        except OSError as exc:
            raise ReplayUsageError(f"--resume: cannot read {path}: {_reason(exc, path)}") from None
        except (ValueError, RecursionError):  # too large, not UTF-8, not JSON, too deep
            raise ReplayUsageError(not_one) from None
        try:
            replay_id, identity, ranges, offsets = _parse(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ReplayUsageError(not_one) from None
        if identity != request.identity:
            raise ReplayUsageError(
                f"--resume: {path} belongs to another replay ({_differences(identity, request)}); "
                "resume with the same arguments, or start over without --resume"
            )
        return cls(path, replay_id, identity, ranges, offsets)


def _parse(
    payload: Any,
) -> tuple[str, dict[str, Any], dict[int, tuple[int, int]], dict[int, int]]:
    """The fields of a saved checkpoint; KeyError, TypeError, ValueError or AttributeError (a
    list where an object belongs) if it is not one: a file edited by hand, or another JSON
    file given as --checkpoint."""
    if not isinstance(payload, dict) or not isinstance(payload["request"], dict):
        raise TypeError("not an object")
    replay_id = payload["replay_id"]
    if not isinstance(replay_id, str):
        raise TypeError("replay_id")
    ranges: dict[int, tuple[int, int]] = {}
    for partition, (start, end) in payload["ranges"].items():
        if not 0 <= int(start) <= int(end) <= MAX_OFFSET:
            raise ValueError("range")
        ranges[int(partition)] = (int(start), int(end))
    offsets = {int(p): int(o) for p, o in payload.get("next_offsets", {}).items()}
    return replay_id, payload["request"], ranges, offsets


def _differences(saved: dict[str, Any], request: ReplayRequest) -> str:
    """The options that differ, briefly (the whole request would be a wall of text)."""
    now = request.identity
    keys = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    named = [f"--{k.replace('_', '-')} was {shorten(repr(saved.get(k)))}" for k in keys[:3]]
    return ", ".join(named) + (", ..." if len(keys) > 3 else "")


def _reason(exc: OSError, path: Path) -> str:
    """'Permission denied', plus the folder it concerns when one above ``path`` is at fault
    (not the temporary file's name: that one means nothing to the person)."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None and Path(os.fsdecode(exc.filename)) in path.parents:
        reason += f" ({os.fsdecode(exc.filename)})"
    return reason
