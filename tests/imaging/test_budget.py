"""The decode budget: weighted, first come first served, every wait bounded by a deadline."""

from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from streams.imaging.budget import Budget


class _SignallingQueue(deque[int]):
    """The budget's line, telling the test when a waiter has joined it."""

    def __init__(self) -> None:
        super().__init__()
        self.joined = threading.Semaphore(0)

    def append(self, ticket: int) -> None:
        super().append(ticket)
        self.joined.release()


def test_a_request_larger_than_the_whole_budget_runs_alone() -> None:
    budget = Budget(10)
    assert budget.acquire(1_000)
    assert budget.in_use == 10
    assert not budget.acquire(1, deadline=time.monotonic())  # past deadline: no wait at all
    budget.release(1_000)
    assert budget.in_use == 0


def test_a_wait_past_its_deadline_gives_up_and_leaves_the_line() -> None:
    budget = Budget(10)
    assert budget.acquire(10)
    assert not budget.acquire(1, deadline=time.monotonic())
    budget.release(10)
    assert budget.acquire(10, deadline=time.monotonic())  # the one that gave up is not in line


def test_waiters_are_served_in_arrival_order() -> None:
    budget = Budget(10)
    line = _SignallingQueue()
    budget._queue = line  # white box: to know when each thread is waiting
    assert budget.acquire(8)
    order: list[str] = []

    def take(name: str, units: int) -> None:
        assert budget.acquire(units)
        order.append(name)

    large = threading.Thread(target=take, args=("large", 5))
    small = threading.Thread(target=take, args=("small", 1))
    large.start()
    assert line.joined.acquire(timeout=30)  # the safety net is not the assertion
    small.start()
    assert line.joined.acquire(timeout=30)
    assert order == []  # 1 unit would fit, but it is not the small one's turn
    budget.release(8)
    large.join(30)
    small.join(30)
    assert order == ["large", "small"] and budget.in_use == 6


def test_a_budget_needs_room_for_one_unit() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Budget(0)
