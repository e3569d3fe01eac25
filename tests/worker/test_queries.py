"""The query gate: places for requests in hand, their turns, and query work kept to its share."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from streams.worker import queries
from streams.worker.queries import QueryGate


def test_places_run_out_at_the_cap_and_come_back() -> None:
    gate = QueryGate(max_requests=2, share=1.0)
    try:
        assert gate.enter() and gate.enter()
        assert not gate.enter() and gate.in_hand == 2
        gate.leave()
        assert gate.enter() and not gate.enter()
    finally:
        gate.close()


def busy(seconds: float) -> None:
    """CPU work, as a scan is (a sleep would not be charged: it takes no CPU)."""
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def test_query_work_takes_at_most_its_share_in_one_thread_of_its_own() -> None:
    share, cpu_s, clients, each = 0.25, 0.02, 4, 5
    gate = QueryGate(max_requests=100, share=share)
    threads: set[str] = set()
    running = [0, 0]  # now, most at once

    def query() -> None:
        threads.add(threading.current_thread().name)
        running[0] += 1
        running[1] = max(running)
        busy(cpu_s)
        running[0] -= 1

    async def client() -> None:  # one request after another, as the middleware runs them
        for _ in range(each):
            await gate.turn()
            await gate.run(query)

    async def scenario() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started

    try:
        took = asyncio.run(scenario())
    finally:
        gate.close()
    assert running[1] == 1 and len(threads) == 1  # one query at a time, in one thread
    assert threads.pop().startswith("api-query")  # its own, not asyncio's default pool
    work = clients * each * cpu_s
    # the first turn of each client comes before any charge: at most one query each unpaced
    assert took >= (work - clients * cpu_s) / share, took
    assert work / took <= share * 1.1 + (clients * cpu_s) / took


def test_cheap_requests_are_paced_by_their_fixed_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "REQUEST_COST_S", 0.01)
    gate = QueryGate(max_requests=100, share=0.5)

    async def scenario() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(gate.turn() for _ in range(20)))
        return time.perf_counter() - started

    try:
        took = asyncio.run(scenario())
    finally:
        gate.close()
    assert took >= 19 * 0.01 / 0.5 * 0.95  # a turn every 20 ms: 50 a second at most


def test_a_share_outside_zero_to_one_is_refused() -> None:
    for share in (0.0, -1.0, 1.5):
        with pytest.raises(ValueError):
            QueryGate(1, share)


def test_a_query_that_raises_is_charged_too() -> None:
    gate = QueryGate(max_requests=10, share=0.1)

    def missing() -> None:
        busy(0.02)  # a scan that found nothing: a 404 costs what it cost
        raise KeyError("nope")

    async def scenario() -> float:
        with pytest.raises(KeyError):
            await gate.run(missing)
        started = time.perf_counter()
        await gate.turn()
        return time.perf_counter() - started

    try:
        waited = asyncio.run(scenario())
    finally:
        gate.close()
    assert waited >= 0.02 / 0.1 * 0.9  # the next turn paid for it
