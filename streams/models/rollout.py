"""Which users a variant runs for: a stable hash of the user id, salted with the variant's name.

The same user gets the same answer on every worker, after a crash and on a replay, because
nothing but the two strings goes in. Salting by variant makes two experiments' samples
independent; raising ``percent`` keeps every user already in the sample and adds more.
"""

from __future__ import annotations

import hashlib

from streams.models.manifest import ModelManifest

# 10,000 buckets: percent can be given to two decimals (0.01% = one bucket).
BUCKETS = 10_000


def bucket(variant: str, user_id: str) -> int:
    """The user's bucket for this variant, 0..BUCKETS-1 (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(f"{variant}\0{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(manifest: ModelManifest, user_id: str) -> bool:
    """Whether ``manifest`` (a variant) runs for ``user_id``; a retired one runs for nobody."""
    rollout = manifest.rollout
    if rollout is None or rollout.mode == "retired":
        return False
    return bucket(manifest.name, user_id) < round(rollout.percent * BUCKETS / 100)
