"""A replay's progress on disk, so `--resume` continues after a crash or Ctrl-C.

The file holds the request (a resume must select the same thing), the replay id (written into
every output's headers) and, per partition, the next offset to read. It is rewritten atomically
after each batch whose outputs are acknowledged; on resume the sink is also asked what it already
holds from this replay id, which covers a crash between the acknowledgement and the rewrite.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.replay.selection import ReplayUsageError


@dataclass
class Checkpoint:
    """Where a replay is."""

    path: Path
    replay_id: str
    request: dict[str, Any]
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # fixed at the first run
    next_offsets: dict[int, int] = field(default_factory=dict)

    def save(self) -> None:
        """Write atomically (temp file + rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "replay_id": self.replay_id,
            "request": self.request,
            "ranges": {str(p): list(r) for p, r in self.ranges.items()},
            "next_offsets": {str(p): o for p, o in self.next_offsets.items()},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".checkpoint-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
        Path(tmp).replace(self.path)

    @classmethod
    def load(cls, path: Path, request: dict[str, Any]) -> Checkpoint:
        """The saved checkpoint; ReplayUsageError if missing or for another request."""
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReplayUsageError(f"--resume: no checkpoint at {path}") from None
        except ValueError as exc:
            raise ReplayUsageError(f"--resume: {path} is not a checkpoint: {exc}") from None
        if payload.get("request") != request:
            raise ReplayUsageError(
                f"--resume: {path} belongs to another replay ({payload.get('request')}); "
                "resume with the same arguments, or start over without --resume"
            )
        ranges = {int(p): (int(r[0]), int(r[1])) for p, r in payload["ranges"].items()}
        offsets = {int(p): int(o) for p, o in payload.get("next_offsets", {}).items()}
        return cls(path, str(payload["replay_id"]), request, ranges, offsets)
