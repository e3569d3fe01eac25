"""exactly_once on Apache Kafka: a worker killed in the middle of a user's erasure, then
started again, ends with the tables and the outputs of an erasure never interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings, settings_env
from streams.worker.residue import TABLES, theirs
from tests.cli.runner import darkroom
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, running, wait_consumed, wait_for
from tests.worker.publishing import publish_folder
from tests.worker.test_exactly_once import event_ids, table, with_outputs_of_its_own

pytestmark = pytest.mark.broker


def tables(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every table as its committed changelog holds it, the times left out."""
    found = {}
    for name in TABLES:
        folded = table(settings, name)
        found[name] = {
            json.loads(key): (
                {k: v for k, v in value.items() if k != "at"} if isinstance(value, dict) else value
            )
            for key, value in folded.items()
        }
    return found


@pytest.mark.timeout(300)
def test_a_kill_in_the_middle_of_an_erasure_ends_as_an_erasure_never_interrupted(
    eos_settings: Settings, tmp_path: Path
) -> None:
    write_photos(tmp_path / "photos", {"ann": 2, "bob": 6}, size=96)
    uploads = {d.photo_id for d in publish_folder(eos_settings, tmp_path / "photos")}
    erase = darkroom("forget", "--user", "bob", "--yes", env=settings_env(eos_settings))
    assert erase.exit_code == 0, erase.output
    flag = tmp_path / "crashed"
    crash = {"CRASH_FLAG": str(flag), "CRASH_AFTER_PHOTOS": "3"}
    worker = WorkerProcess(
        eos_settings, tmp_path, "w", module="tests.worker.crashing_worker", env=crash
    )
    worker.start()
    assert worker.process is not None
    wait_for(lambda: worker.process.poll() is not None, 180, "the crash mid-erasure")  # type: ignore[union-attr]
    assert worker.process.returncode == 9 and flag.exists(), worker.log.read_text()[-2000:]

    worker.module = None  # the same worker, data folder and group, without the crash
    with running(worker):
        wait_consumed(eos_settings)
    clean = with_outputs_of_its_own(eos_settings, "clean")
    with running(WorkerProcess(clean, tmp_path, "clean")):
        wait_consumed(clean)

    after = tables(eos_settings)
    assert after == tables(clean)
    left = {name: [k for k in rows if theirs(k, "bob")] for name, rows in after.items()}
    assert {name: keys for name, keys in left.items() if keys} == {"forgotten": ["bob/"]}
    seen = event_ids(eos_settings)  # a read_committed reader: each outcome once
    assert set(seen) == uploads | {None} and all(n == 1 for n in seen.values()), seen
