"""How a near-duplicate group and a user's people lie in their tables: as rows, one per copy of
a group (streams.pipeline.bestshot.rows_of) and one per person, candidate and alias behind a
small header (streams.pipeline.people_state.rows_of), read back here by a range scan. A change is
written as the rows that changed (``write``), so what a batch writes does not grow with a
user's library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.pipeline.bestshot import Group, from_rows
from streams.pipeline.keys import entry_prefix, user_prefix
from streams.pipeline.people_state import State
from streams.pipeline.people_state import from_rows as people_from_rows
from streams.worker.tables import Tables, put, rows


def group_at(tables: Tables, user_id: str, group_id: str) -> Group | None:
    """The near-duplicate group ``group_id`` of ``user_id``, or None."""
    prefix = entry_prefix(user_id, group_id)
    found = rows(tables.dup_groups, prefix)
    return from_rows(group_id, ((key[len(prefix) :], value) for key, value in found))


def people_at(tables: Tables, user_id: str) -> State | None:
    """``user_id``'s people (streams.pipeline.people_state.State), or None."""
    return people_from_rows(user_id, rows(tables.people, user_prefix(user_id)))


def write(table: Any, changed: Mapping[str, Any]) -> None:
    """``changed``'s rows into ``table`` (None: a tombstone, if the row is there)."""
    for key, value in changed.items():
        put(table, key, value)
