"""Parsing what a replay selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.replay.selection import (
    Filters,
    ReplayUsageError,
    bound,
    parse_partitions,
    parse_time,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_partitions() -> None:
    assert parse_partitions(None, 4) == [0, 1, 2, 3]
    assert parse_partitions("0,2-3", 4) == [0, 2, 3]
    assert parse_partitions("3, 1", 4) == [1, 3]
    for bad, message in (("5", r"\[5\] do not exist"), ("3-1", "ends before"), ("x", "not a")):
        with pytest.raises(ReplayUsageError, match=message):
            parse_partitions(bad, 4)


def test_times() -> None:
    assert parse_time("-2h", NOW) == NOW - timedelta(hours=2)
    assert parse_time("-30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_time("-1.5d", NOW) == NOW - timedelta(days=1.5)
    assert parse_time("now", NOW) == NOW
    assert parse_time("2026-11-20T08:00:00Z") == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert parse_time("2026-11-20T08:00") == datetime(2026, 11, 20, 8, tzinfo=UTC)  # naive = UTC
    with pytest.raises(ReplayUsageError, match="not a time"):
        parse_time("yesterday")


def test_bounds_take_one_form_each() -> None:
    names = ("--from-offset", "--from-time", "--from-beginning")
    assert bound(5, None, False, names).offset == 5
    assert bound(None, None, True, names).describe("beginning") == "beginning"
    with pytest.raises(ReplayUsageError, match="choose one of --from-offset, --from-time"):
        bound(5, "-1h", False, names)
    with pytest.raises(ReplayUsageError, match=">= 0"):
        bound(-1, None, False, names)


def test_filters() -> None:
    record = {"user_id": "u", "photo_id": "p", "reason": "CORRUPT_IMAGE"}
    assert Filters().match(record) and not Filters().any
    assert Filters(user="u", reason="CORRUPT_IMAGE").match(record)
    assert not Filters(photo="q").match(record)
