"""The table helpers every list rests on (streams/worker/tables.py, streams/pipeline/keys.py):
a list is one key per photo under its user's prefix, read back as a range."""

from __future__ import annotations

from typing import Any

from streams.pipeline.keys import entry_key, entry_prefix, split_entry, user_prefix
from streams.worker.tables import newest, put, rows, user_rows


class Recording(dict[str, Any]):
    """A table that remembers its deletes (each would be a changelog tombstone)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.deleted: list[str] = []

    def __delitem__(self, key: str) -> None:
        self.deleted.append(key)
        super().__delitem__(key)


def test_an_entry_key_splits_back_and_stays_under_its_users_prefix_only() -> None:
    key = entry_key("a/b", "Cat / Dog", "p/1")
    assert split_entry(key) == ("a/b", "Cat / Dog", "p/1")
    assert key.startswith(user_prefix("a/b")) and key.startswith(entry_prefix("a/b", "Cat / Dog"))
    assert not key.startswith(user_prefix("a"))  # user "a" is not user "a/b"
    assert not entry_key("a", "Cat", "p").startswith(entry_prefix("a", "Ca"))


def test_a_list_reads_newest_first_up_to_its_limit_and_says_how_many_it_holds() -> None:
    table = {
        entry_key("u", "Cat", "old"): "2026-01-01T00:00:00.000+00:00",
        entry_key("u", "Cat", "new"): "2026-03-01T00:00:00.000+00:00",
        entry_key("u", "Cat", "b"): "2026-02-01T00:00:00.000+00:00",
        entry_key("u", "Cat", "a"): "2026-02-01T00:00:00.000+00:00",
        entry_key("u", "Dog", "dog"): "2026-04-01T00:00:00.000+00:00",
        entry_key("v", "Cat", "theirs"): "2026-05-01T00:00:00.000+00:00",
    }
    assert newest(table, entry_prefix("u", "Cat"), 10) == (["new", "b", "a", "old"], 4)
    assert newest(table, entry_prefix("u", "Cat"), 2) == (["new", "b"], 4)
    assert newest(table, entry_prefix("u", "Bird"), 2) == ([], 0)
    assert sorted(photo for photo, _ in user_rows(table, "u")) == [
        "Cat/a",
        "Cat/b",
        "Cat/new",
        "Cat/old",
        "Dog/dog",
    ]


def test_a_mapping_that_scans_itself_is_asked_for_the_range() -> None:
    asked = []

    class Scanning(dict[str, Any]):
        def scan(self, prefix: str) -> Any:
            asked.append(prefix)
            return iter([(k, v) for k, v in sorted(self.items()) if k.startswith(prefix)])

    table = Scanning({"u/1": 1, "v/1": 2})
    assert list(rows(table, "u/")) == [("u/1", 1)] and asked == ["u/"]


def test_none_deletes_a_key_once_and_writes_no_tombstone_for_a_missing_one() -> None:
    table = Recording({"k": 1})
    put(table, "k", None)
    put(table, "k", None)
    put(table, "gone", None)
    assert table.deleted == ["k"] and table == {}
    put(table, "k", 2)
    assert table == {"k": 2}
