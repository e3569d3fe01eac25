"""Parsing what a replay selects."""

from __future__ import annotations

import tracemalloc
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
    for bad, message in (
        ("5", "partition 5 does not exist"),
        ("3-1", "ends before"),
        ("x", "not a"),
    ):
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


def test_partition_ranges_are_checked_before_they_are_expanded() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ReplayUsageError) as caught:
            parse_partitions("0-2000000", 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "--partitions: partitions 4-2000000 do not exist: the topic has 4 (0-3)"
    )
    assert peak < 1_000_000  # expanding the range first took about 100 MB here
    with pytest.raises(ReplayUsageError, match=r"partitions 5, 7-9, 12, \.\.\. do not exist"):
        parse_partitions("1,5,7-9,12,20", 4)
    with pytest.raises(ReplayUsageError, match=r"the topic has 1 \(0\)$"):
        parse_partitions("1", 1)
    huge = "9" * 5000  # beyond int()'s digit limit: once a ValueError and a traceback
    with pytest.raises(ReplayUsageError, match=r"'9{21}\.\.\.' is not a partition number"):
        parse_partitions(huge, 4)
    with pytest.raises(ReplayUsageError, match=r"'x{21}\.\.\.' is not a number"):
        parse_partitions("x" * 5000, 4)
    assert parse_partitions("0003", 4) == [3]


def test_times_out_of_range_name_the_option_and_the_range() -> None:
    for text in ("-999999999d", "-" + "9" * 400 + "h", "1969-12-31T23:59:59Z", "0001-01-01"):
        with pytest.raises(ReplayUsageError) as caught:
            parse_time(text, NOW, "--from-time")
        message = str(caught.value)
        assert message.startswith("--from-time '") and "is out of range" in message
        assert "1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z" in message
        assert len(message) < 120
    with pytest.raises(ReplayUsageError, match="out of range"):
        parse_time("9999-12-31T23:59:59-01:00", NOW)  # after the last second, in UTC
    assert parse_time("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_time("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(ReplayUsageError, match=r"^--to-time: 'soon' is not a time"):
        parse_time("soon", NOW, "--to-time")
    names = ("--to-offset", "--to-time", "--until-end")
    with pytest.raises(ReplayUsageError, match=r"^--to-time '-1000000000d' is out of range"):
        bound(None, "-1000000000d", False, names, NOW)
    assert bound(None, "-1h", False, names, NOW).time == NOW - timedelta(hours=1)
