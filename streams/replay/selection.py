"""What a replay reads: topic, partitions, start and end, filters; parsed and checked up front.

Every mistake is a ReplayUsageError (exit code 2) raised before anything is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ReplayUsageError(ValueError):
    """Arguments that cannot describe a replay."""


def parse_partitions(spec: str | None, available: int) -> list[int]:
    """'0,2-5' -> [0, 2, 3, 4, 5]; None -> every partition; each must exist."""
    if spec is None or spec.strip() in ("", "all"):
        return list(range(available))
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ReplayUsageError(f"--partitions: {part!r} is not a number or a range like 2-5")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ReplayUsageError(f"--partitions: range {part!r} ends before it starts")
        chosen.update(range(first, last + 1))
    missing = sorted(p for p in chosen if p >= available)
    if missing:
        raise ReplayUsageError(
            f"--partitions: {missing} do not exist (the topic has {available}: 0-{available - 1})"
        )
    return sorted(chosen)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO-8601 ('2026-11-20T08:00', naive = UTC), 'now', or relative ('-2h', '-30m', '-1d')."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        return now - timedelta(**{_UNITS[relative[2]]: float(relative[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayUsageError(
            f"{text!r} is not a time: use ISO-8601 (2026-11-20T08:00:00Z), "
            "'now', or relative like -2h, -30m, -1d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
    offset: int | None, time: str | None, edge_flag: bool, names: tuple[str, str, str]
) -> Bound:
    """At most one of --X-offset, --X-time, --X-edge."""
    given = [
        n for n, v in zip(names, (offset, time, edge_flag), strict=True) if v not in (None, False)
    ]
    if len(given) > 1:
        raise ReplayUsageError(f"choose one of {', '.join(given)}")
    if offset is not None and offset < 0:
        raise ReplayUsageError(f"{names[0]} must be >= 0")
    return Bound(offset=offset, time=parse_time(time) if time is not None else None)


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
