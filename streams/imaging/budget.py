"""A weighted semaphore served in arrival order: decode memory and decode slots.

16 flat 10000x10000 PNGs are 5 MB of bytes but 4.8 GB of BGR pixels; the decode threads take
a photo's decoded pixel count from this budget before ``cv2.imdecode`` and give it back once the
photo is shrunk, so only ``limit`` pixels (3 bytes each) are ever at full size at once. Waiters
are served first come, first served: a large photo is not overtaken forever by small ones, and
every wait is bounded by its photo's deadline.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque


class Budget:
    """``limit`` units shared by threads; ``acquire`` waits its turn (FIFO) until it fits."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a budget needs at least one unit, not {limit}")
        self.limit = limit
        self._in_use = 0
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        """Units held now."""
        with self._changed:
            return self._in_use

    def weight(self, units: int) -> int:
        """What ``units`` costs: at least 1, at most the whole budget (then it runs alone)."""
        return max(1, min(units, self.limit))

    def acquire(self, units: int, deadline: float = math.inf) -> bool:
        """Take ``weight(units)``; False if it was not our turn or did not fit by ``deadline``
        (a ``time.monotonic()`` instant)."""
        weight = self.weight(units)
        with self._changed:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            timeout = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
            got = self._changed.wait_for(
                lambda: self._queue[0] == ticket and self._in_use + weight <= self.limit,
                timeout,
            )
            self._queue.remove(ticket)
            if got:
                self._in_use += weight
            self._changed.notify_all()  # the next in line may fit now, or be first now
            return got

    def release(self, units: int) -> None:
        """Give back what ``acquire(units)`` took."""
        with self._changed:
            self._in_use -= self.weight(units)
            self._changed.notify_all()
