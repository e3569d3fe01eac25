"""`darkroom worker` with bugs that one photo meets, every time (poison messages):

- building the PhotoEnriched of an upload whose file name contains "poison" raises ValueError
  (the pipeline raises: the batch is retried photo by photo, INTERNAL_ERROR);
- building the PhotoEnriched of an upload whose file name contains "stall" blocks for an hour
  (a stuck batch: the lag and the oldest upload's age grow, streams/worker/lag.py);
- the labels model raises on every batch that holds a photo whose id is listed in the
  environment variable ``POISON_INFERENCE`` (comma-separated), so the engine isolates the photo
  and dead-letters it (INFERENCE_ERROR).

Run as ``python -m tests.worker.poisoned_worker`` (WorkerProcess(module=...)); everything else
is the real worker.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from streams.engine import enricher, running
from streams.pipeline.outputs import OutputBuilder

_enriched = OutputBuilder.enriched
_run = running.run_production


def poisoned(self: OutputBuilder, upload: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    if "stall" in (upload.get("filename") or ""):
        time.sleep(3600)
    if "poison" in (upload.get("filename") or ""):
        raise ValueError(f"poisoned by {upload['filename']}")
    return _enriched(self, upload, *args, **kwargs)


def _failing_run(runner: Any, chunk: list[Any]) -> None:
    poison = set(os.environ.get("POISON_INFERENCE", "").split(","))
    works = {id(job.work) for job in chunk if job.photo_id in poison}
    if not works or runner.name != "mobilenet_v2":
        return _run(runner, chunk)
    real = runner.run

    def run(items: list[Any]) -> Any:
        if any(id(item) in works for item in items):
            raise RuntimeError("ONNXRuntimeError: out of memory on this photo (injected)")
        return real(items)

    runner.run = run
    try:
        return _run(runner, chunk)
    finally:
        runner.run = real


if __name__ == "__main__":
    OutputBuilder.enriched = poisoned  # type: ignore[method-assign]
    enricher.run_production = _failing_run  # type: ignore[attr-defined]  # the name it calls
    from streams.cli.app import main

    sys.argv = ["darkroom", "worker"]
    main()
