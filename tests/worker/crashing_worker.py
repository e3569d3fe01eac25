"""`darkroom worker` that dies (as kill -9 would: no clean stop, nothing flushed) in the middle
of a user's erasure, after it has forgotten ``CRASH_AFTER_PHOTOS`` photos, the first time only:
it leaves the file ``CRASH_FLAG`` behind, and a worker started again finds it and runs
normally. Run as ``python -m tests.worker.crashing_worker``; the rest is the real worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streams.worker.forgetting import Forgetting

_forget_photo = Forgetting.forget_photo
_forgotten = 0


def forget_photo(self: Forgetting, user: str, photo_id: str) -> None:
    global _forgotten
    _forget_photo(self, user, photo_id)
    _forgotten += 1
    flag = Path(os.environ["CRASH_FLAG"])
    if _forgotten >= int(os.environ.get("CRASH_AFTER_PHOTOS", "1")) and not flag.exists():
        flag.write_text("crashed mid-erasure\n")
        sys.stderr.write(f"crashing after forgetting {_forgotten} photo(s)\n")
        sys.stderr.flush()
        os._exit(9)


if __name__ == "__main__":
    Forgetting.forget_photo = forget_photo  # type: ignore[method-assign]
    from streams.cli.app import main

    sys.argv = ["darkroom", "worker"]
    main()
