"""`darkroom worker` with a bug that one photo meets: building the PhotoEnriched of an upload
whose file name contains "poison" raises ValueError, every time (a poison message).

Run as ``python -m tests.worker.poisoned_worker`` (WorkerProcess(module=...)); everything else
is the real worker.
"""

from __future__ import annotations

import sys
from typing import Any

from streams.pipeline.outputs import OutputBuilder

_enriched = OutputBuilder.enriched


def poisoned(self: OutputBuilder, upload: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    if "poison" in (upload.get("filename") or ""):
        raise ValueError(f"poisoned by {upload['filename']}")
    return _enriched(self, upload, *args, **kwargs)


if __name__ == "__main__":
    OutputBuilder.enriched = poisoned  # type: ignore[method-assign]
    from streams.cli.app import main

    sys.argv = ["darkroom", "worker"]
    main()
