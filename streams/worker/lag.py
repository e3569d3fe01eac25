"""What an operator watches: how far behind the worker is, and whether it moves.

Read at each scrape from the consumer's own state, without a request to the broker, for each
uploads partition this worker owns:

- ``darkroom_consumer_lag{partition}``: uploads not yet committed: the partition's high
  watermark (from the last fetch) less the group's committed offset (before the first commit,
  less the offset the agent expects next);
- ``darkroom_committed_offset{partition}``;

and for the worker:

- ``darkroom_oldest_upload_age_seconds``: now less the record time of the oldest upload taken
  and not yet answered (0 when none): how late the answers are running;
- ``darkroom_last_batch_timestamp_seconds``: when the last batch was acknowledged (alert on
  ``time() -`` it while the lag is above 0: no progress);
- ``darkroom_rebalances_total``;
- ``darkroom_broker_connected``: 1 while the consumer knows its group's coordinator (what
  /healthz also needs).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from faust.types import TP
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.worker.agent import InFlight
from streams.worker.continuity import Continuity
from streams.worker.transport import group_coordinator_known


class Progress(Collector):
    """The lag and progress metrics above, for one worker."""

    def __init__(self, app: Any, topic: str, in_flight: InFlight, continuity: Continuity) -> None:
        self.app, self.topic = app, topic
        self.in_flight, self.continuity = in_flight, continuity
        self.rebalances = 0

    def rebalanced(self, *_args: Any, **_kwargs: Any) -> None:
        """Connected to Faust's on_rebalance_complete."""
        self.rebalances += 1

    def owned(self) -> list[TP]:
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # not started yet, or stopping
            return []
        return sorted(tp for tp in assigned if tp.topic == self.topic)

    def collect(self) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            "darkroom_consumer_lag",
            "Uploads not yet committed, per partition this worker owns",
            labels=["partition"],
        )
        committed = GaugeMetricFamily(
            "darkroom_committed_offset",
            "The group's committed offset, per partition this worker owns",
            labels=["partition"],
        )
        for tp in self.owned():
            done = self._done(tp)
            high = self._highwater(tp)
            if done is None or high is None:
                continue
            lag.add_metric([str(tp.partition)], max(0, high - done))
            committed.add_metric([str(tp.partition)], done)
        yield lag
        yield committed
        yield GaugeMetricFamily(
            "darkroom_oldest_upload_age_seconds",
            "Now less the record time of the oldest upload taken and not yet answered",
            value=self.in_flight.oldest_age(time.time()),
        )
        yield GaugeMetricFamily(
            "darkroom_last_batch_timestamp_seconds",
            "When the last batch was acknowledged (Unix time; 0: none yet)",
            value=self.in_flight.last_done,
        )
        rebalances = CounterMetricFamily("darkroom_rebalances", "Rebalances this worker completed")
        rebalances.add_metric([], self.rebalances)
        yield rebalances
        yield GaugeMetricFamily(
            "darkroom_broker_connected",
            "1 while the consumer knows its group's coordinator",
            value=1.0 if group_coordinator_known(self.app) else 0.0,
        )

    def _done(self, tp: TP) -> int | None:
        offset = self.app.consumer._committed_offset.get(tp)
        if offset is None:  # nothing committed yet: where the agent is
            offset = self.continuity.next.get(tp)
        return None if offset is None else int(offset)

    def _highwater(self, tp: TP) -> int | None:
        try:
            high = self.app.consumer.highwater(tp)
        except Exception:  # no fetch answered for it yet
            return None
        return None if high is None or high < 0 else int(high)
