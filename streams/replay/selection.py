"""What a replay reads: topic, partitions, start and end, filters; parsed and checked up front.

Every mistake is a ReplayUsageError (exit code 2) raised before anything is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams.errors import UsageError

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SPAN = re.compile(r"(\d+)(?:-(\d+))?")
# Kafka partition ids are 32-bit: a longer number is a typo, and would only slow int() down
_MAX_PARTITION_DIGITS = 10
# Kafka timestamps are epoch milliseconds >= 0 (negative ones mean "latest"/"earliest" to
# offsets_for_times); the upper end is the last second a datetime can hold
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_TIME_RANGE = "times go from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"

Spans = tuple[tuple[int, int], ...]


class ReplayUsageError(UsageError, ValueError):
    """Arguments that cannot describe a replay."""


def shorten(text: str, limit: int = 24) -> str:
    """Arguments quoted in messages stay short, however long the argument."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_partition_spec(spec: str | None) -> Spans | None:
    """'0,2-5' -> ((0, 0), (2, 5)); None or 'all' -> None (every partition); '' is refused.
    The syntax only: whether they exist is for expand_partitions, once the topic is known."""
    if spec is None or spec.strip() == "all":
        return None
    if not spec.strip():
        raise ReplayUsageError("--partitions is empty: name some (0,2-5), or leave it out for all")
    spans = []
    for raw in spec.split(","):
        part = raw.strip()
        match = _SPAN.fullmatch(part)
        if not match:
            raise ReplayUsageError(
                f"--partitions: {shorten(part)!r} is not a number or a range like 2-5"
            )
        digits = (match[1], match[2] or match[1])
        if any(len(d.lstrip("0")) > _MAX_PARTITION_DIGITS for d in digits):
            raise ReplayUsageError(f"--partitions: {shorten(part)!r} is not a partition number")
        first, last = int(digits[0]), int(digits[1])
        if last < first:
            raise ReplayUsageError(f"--partitions: range {part!r} ends before it starts")
        spans.append((first, last))
    return tuple(spans)


def expand_partitions(spans: Spans | None, available: int) -> list[int]:
    """The partitions the spans name (None: all), each checked to exist before any range is
    expanded, so '0-100000000' costs nothing and its error names the range, not its numbers."""
    if spans is None:
        return list(range(available))
    missing = [(max(first, available), last) for first, last in spans if last >= available]
    if missing:
        texts = list(dict.fromkeys(f"{a}" if a == b else f"{a}-{b}" for a, b in missing))
        named = ", ".join(texts[:3]) + (", ..." if len(texts) > 3 else "")
        one = len(missing) == 1 and missing[0][0] == missing[0][1]
        has = f"{available} (0-{available - 1})" if available > 1 else f"{available} (0)"
        raise ReplayUsageError(
            f"--partitions: partition{'' if one else 's'} {named} "
            f"{'does' if one else 'do'} not exist: the topic has {has}"
        )
    return sorted({p for first, last in spans for p in range(first, last + 1)})


def parse_partitions(spec: str | None, available: int) -> list[int]:
    """'0,2-5' -> [0, 2, 3, 4, 5]; None -> every partition; each must exist."""
    return expand_partitions(parse_partition_spec(spec), available)


def parse_time(text: str, now: datetime | None = None, option: str = "time") -> datetime:
    """ISO-8601 ('2026-11-20T08:00', naive = UTC), 'now', or relative ('-2h', '-30m', '-1d'),
    within what a Kafka timestamp can be; ``option`` names the argument in errors."""
    now = now or datetime.now(UTC)
    value = text.strip()
    out_of_range = ReplayUsageError(f"{option} {shorten(text)!r} is out of range: {_TIME_RANGE}")
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        try:
            parsed = now - timedelta(**{_UNITS[relative[2]]: float(relative[1])})
        except OverflowError:  # more than timedelta or datetime can hold: -999999999d
            raise out_of_range from None
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ReplayUsageError(
                f"{option}: {shorten(text)!r} is not a time: use ISO-8601 "
                "(2026-11-20T08:00:00Z), 'now', or relative like -2h, -30m, -1d"
            ) from None
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not EARLIEST <= parsed <= LATEST:
        raise out_of_range
    return parsed


@dataclass(frozen=True)
class Bound:
    """One end of the range: an offset, a time, or the topic's edge (None = beginning/end)."""

    offset: int | None = None
    time: datetime | None = None

    @property
    def millis(self) -> int | None:
        """The time as epoch milliseconds."""
        return None if self.time is None else int(self.time.timestamp() * 1000)

    def describe(self, edge: str) -> str:
        """For progress lines and errors."""
        if self.offset is not None:
            return f"offset {self.offset}"
        if self.time is not None:
            return self.time.isoformat()
        return edge


def bound(
    offset: int | None,
    time: str | None,
    edge_flag: bool,
    names: tuple[str, str, str],
    now: datetime | None = None,
) -> Bound:
    """At most one of --X-offset, --X-time, --X-edge; relative times count back from ``now``."""
    given = [
        n for n, v in zip(names, (offset, time, edge_flag), strict=True) if v not in (None, False)
    ]
    if len(given) > 1:
        raise ReplayUsageError(f"choose one of {', '.join(given)}")
    if offset is not None and offset < 0:
        raise ReplayUsageError(f"{names[0]} must be >= 0")
    parsed = parse_time(time, now, names[1]) if time is not None else None
    return Bound(offset=offset, time=parsed)


@dataclass(frozen=True)
class Filters:
    """Keep only events that match every given filter."""

    user: str | None = None
    photo: str | None = None
    reason: str | None = None

    def match(self, record: dict[str, object]) -> bool:
        """Whether a decoded event passes."""
        return (
            (self.user is None or record.get("user_id") == self.user)
            and (self.photo is None or record.get("photo_id") == self.photo)
            and (self.reason is None or record.get("reason") == self.reason)
        )

    @property
    def any(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in (self.user, self.photo, self.reason))
