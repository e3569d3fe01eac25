"""Table keys of one user's photos: the user id quoted ("/" included), then "/", then the photo
id, so the first "/" splits a key back and one user's keys are one prefix (a range scan). A
list of photos (a tag's, a person's) is one key per photo under the user's prefix and the
list's quoted name: no table value grows with the size of a user's library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote


def photo_key(user_id: str, photo_id: str) -> str:
    """The key of ``photo_id`` of ``user_id`` (the embeddings table's)."""
    return f"{user_prefix(user_id)}{photo_id}"


def user_prefix(user_id: str) -> str:
    """What every key of ``user_id``'s photos starts with, and no other user's."""
    return f"{quote(user_id, safe='')}/"


def split_key(key: str) -> tuple[str, str]:
    """(user id, photo id) of a ``photo_key``."""
    user, _, photo = key.partition("/")
    return unquote(user), photo


def entry_prefix(user_id: str, name: str) -> str:
    """What every key of the list ``name`` of ``user_id`` starts with (a tag's photos, a
    person's): the user's prefix, then the name quoted, then "/"."""
    return f"{user_prefix(user_id)}{quote(name, safe='')}/"


def entry_key(user_id: str, name: str, photo_id: str) -> str:
    """One photo's key in the list ``name`` of ``user_id``: a list is one key per photo, read
    as a range, so adding a photo writes one small record whatever the list's length."""
    return f"{entry_prefix(user_id, name)}{photo_id}"


def split_entry(key: str) -> tuple[str, str, str]:
    """(user id, list name, photo id) of an ``entry_key``."""
    user, rest = split_key(key)
    name, _, photo = rest.partition("/")
    return user, unquote(name), photo


def row_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The writes that take a table's rows from ``before`` to ``after`` (key -> value; None:
    delete): only what differs, so a value of many rows costs what changed of it."""
    changed: dict[str, Any] = {key: None for key in before if key not in after}
    changed.update({key: value for key, value in after.items() if before.get(key) != value})
    return changed
