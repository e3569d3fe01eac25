"""Interactive queries kept to a stated share of one core of the worker.

200 concurrent readers of similar photos and duplicates made enrichment 3.3 times slower: each
query's scan ran in asyncio's default pool (6 threads on 2 cores, the pool the worker's
continuity checks and DNS lookups wait in too), the event loop waited for the similar-photo
cache's lock behind them when recording a batch, and nothing bounded how many requests the
worker took on at once. Now:

- at most ``max_requests`` data requests are in hand at once (waiting for their turn, running,
  or routed to their owner); one more is answered 429 with Retry-After at once;
- each request is charged for its work and waits for its turn: requests start at a pace at
  which the charges add up to at most ``share`` of a second per second. A request is charged
  ``REQUEST_COST_S`` for the parsing, routing and answering, plus the CPU time its query takes
  in the query thread, one thread of its own (so never more than one core at once).

At the default share (0.1), enrichment beside 200 readers ran at 0.79-0.91 of its throughput
alone, and at 0.47 with the limits lifted (benchmarks/api_isolation.py, 2 cores shared with the
readers; the code before these changes: 0.32). The price: a heavy query delays the next
ones, by ten times its CPU time at 0.1 (a 50,000-photo user's first similar-photos query, about
4 s, holds the next turn 40 s). A client that ignores Retry-After still costs its 429s (a
fraction of a millisecond each): this bounds what the worker does for the requests it takes
on, not what reaches its port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
RETRY_AFTER_S = 1  # what a 429 tells the client to wait
# The worker's CPU for one data request besides its query, parse to answer: with 200 readers
# and nothing else to do, a worker answering 1,658 requests a second (share 1) used 0.82 cores
# and one answering 130 (and 183 429s, share 0.1) 0.19, idle costs included: about 0.45 ms.
REQUEST_COST_S = 0.0005


class QueryGate:
    """Places for requests (``enter``/``leave``), their turns (``turn``), the query thread
    (``run``). Used from the event loop only (``run``'s work runs in the thread)."""

    def __init__(self, max_requests: int, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.max_requests, self.share = max_requests, share
        self.in_hand = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="api-query")
        self._next_turn = 0.0  # loop time from which the charges so far are paid for

    def enter(self) -> bool:
        """Take a place for one request; False when all are taken (answer 429)."""
        if self.in_hand >= self.max_requests:
            return False
        self.in_hand += 1
        return True

    def leave(self) -> None:
        """Give back what ``enter`` took."""
        self.in_hand -= 1

    async def turn(self) -> None:
        """Wait for this request's turn; it is charged ``REQUEST_COST_S``."""
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_turn)
        self._charge(start, REQUEST_COST_S)
        if start > now:
            await asyncio.sleep(start - now)

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in the query thread; the request is charged the CPU time it took, what
        it raises included (a 404 may have cost a scan)."""
        loop = asyncio.get_running_loop()
        timed = _Timed(work)
        try:
            return await loop.run_in_executor(self._thread, timed)
        finally:
            self._charge(loop.time(), timed.cpu_s)

    def _charge(self, now: float, seconds: float) -> None:
        # idle time is not saved up: a burst after a quiet minute is paced like any other
        self._next_turn = max(now, self._next_turn) + seconds / self.share

    def close(self) -> None:
        """Stop the thread; queries not started are dropped."""
        self._thread.shutdown(wait=False, cancel_futures=True)


class _Timed(Generic[T]):
    """``work`` as a callable that notes the CPU time this thread spent on it (waits for the
    GIL not included), whether it returns or raises."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work, self.cpu_s = work, 0.0

    def __call__(self) -> T:
        started = time.thread_time()
        try:
            return self.work()
        finally:
            self.cpu_s = time.thread_time() - started
