"""Which table keys `forget --verify` counts as a user's (streams/worker/residue.py)."""

from __future__ import annotations

from streams.pipeline.keys import entry_key, photo_key, user_prefix
from streams.worker.residue import names_photo, theirs


def test_a_users_keys_are_their_id_their_prefix_and_their_lists_not_another_users() -> None:
    listed = entry_key("ann", "Cat", "p1")
    for key in ("ann", photo_key("ann", "p1"), user_prefix("ann"), listed, "ann/p0123"):
        assert theirs(key, "ann"), key
    others = ("anna", photo_key("anna", "p1"), entry_key("anna", "Cat", "p1"), "bob")
    for key in (*others, photo_key("bob", "ann")):
        assert not theirs(key, "ann"), key
    # an id that needs quoting: every key of theirs is quoted
    assert theirs(photo_key("a/b", "p"), "a/b") and theirs(entry_key("a/b", "Cat", "p"), "a/b")
    assert not theirs(photo_key("a", "b/p"), "a/b")


def test_a_photos_keys_are_its_own_and_its_entries_in_the_lists() -> None:
    assert names_photo("embeddings", photo_key("ann", "p1"), "ann", "p1")
    assert names_photo("tag_photos", entry_key("ann", "Cat", "p1"), "ann", "p1")
    assert names_photo("person_photos", entry_key("ann", "p9f", "p1"), "ann", "p1")
    assert not names_photo("tag_photos", entry_key("ann", "Cat", "p10"), "ann", "p1")
    assert not names_photo("embeddings", photo_key("ann", "p10"), "ann", "p1")
    # a group's rows name its copy, and its first photo in the group's id
    assert names_photo("dup_groups", entry_key("ann", "p1", "p2"), "ann", "p1")
    assert names_photo("dup_groups", entry_key("ann", "p2", "p1"), "ann", "p1")
    assert not names_photo("dup_groups", entry_key("ann", "p2", "p3"), "ann", "p1")
