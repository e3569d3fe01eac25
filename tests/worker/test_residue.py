"""Which table keys `forget --verify` counts as a user's (streams/worker/residue.py)."""

from __future__ import annotations

from streams.pipeline.keys import photo_key, user_prefix
from streams.worker.residue import theirs


def test_a_users_keys_are_their_id_their_prefix_and_their_lists_not_another_users() -> None:
    for key in ("ann", photo_key("ann", "p1"), user_prefix("ann"), "ann/Cat", "ann/p0123"):
        assert theirs(key, "ann"), key
    for key in ("anna", photo_key("anna", "p1"), "anna/Cat", "bob", photo_key("bob", "ann")):
        assert not theirs(key, "ann"), key
    # an id that needs quoting: its photo keys are quoted, its lists are not
    assert theirs(photo_key("a/b", "p"), "a/b") and theirs("a/b/Cat", "a/b")
