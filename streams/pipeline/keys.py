"""Table keys of one user's photos: the user id quoted ("/" included), then "/", then the photo
id, so the first "/" splits a key back and one user's keys are one prefix (a range scan)."""

from __future__ import annotations

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
