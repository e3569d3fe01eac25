"""What an operator watches (streams/worker/lag.py): the lag per partition, the oldest upload's
age, the last batch's time, the broker connection, on a worker that keeps up and on one whose
batch is stuck."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.config import Settings
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, running, wait_consumed, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]


def gauges(text: str, name: str) -> dict[str, float]:
    """{partition label or "": value} of one metric in Prometheus' text format."""
    found = {}
    for labels, value in re.findall(rf"^{name}(?:{{(.*?)}})? (\S+)$", text, flags=re.MULTILINE):
        partition = re.search(r'partition="(\d+)"', labels or "")
        found[partition[1] if partition else ""] = float(value)
    return found


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_lag_is_zero_when_caught_up_and_grows_behind_a_stuck_batch(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    write_photos(tmp_path / "photos", {"ann": 3, "ben": 3}, size=96)
    worker = WorkerProcess(settings, tmp_path, "w", module="tests.worker.poisoned_worker")
    with running(worker):
        delivered = publish_folder(settings, tmp_path / "photos")
        wait_for_outcomes(settings, len(delivered))
        wait_consumed(settings)
        caught_up = worker.metrics()
        lag = gauges(caught_up, "darkroom_consumer_lag")
        assert lag and set(lag.values()) == {0.0}, lag
        assert gauges(caught_up, "darkroom_broker_connected") == {"": 1.0}
        assert gauges(caught_up, "darkroom_last_batch_timestamp_seconds")[""] > 0
        assert gauges(caught_up, "darkroom_oldest_upload_age_seconds") == {"": 0.0}
        assert gauges(caught_up, "darkroom_rebalances_total")[""] >= 1

        # a batch that never finishes: the uploads behind it wait, and the metrics say so
        paths = write_photos(tmp_path / "more", {"cat": 4}, size=96)  # new ids: not done yet
        # published first (names sort), so nothing of cat's can complete before the stall
        paths[0].rename(paths[0].with_name("a-stall.jpg"))
        publish_folder(settings, tmp_path / "more")

        def stuck() -> dict[str, float] | None:
            text = worker.metrics()
            behind = {p: v for p, v in gauges(text, "darkroom_consumer_lag").items() if v}
            age = gauges(text, "darkroom_oldest_upload_age_seconds")[""]
            return behind if behind and age > 3 else None

        behind = wait_for(
            stuck,
            60,
            "the lag and the oldest upload's age to show the stall",
            detail=lambda: [
                line
                for line in worker.metrics().splitlines()
                if line.startswith(("darkroom_consumer", "darkroom_oldest", "darkroom_in_flight"))
            ],
        )
        assert sum(behind.values()) == 4  # every upload of the stuck partition since the stall
