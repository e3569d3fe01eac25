"""One user's people as the clustering holds them (``State``: a header, the clusters by id,
the aliases of merged ids) and as a table keeps them (``rows_of``: one row per cluster and one
per alias behind the header, so a batch writes what its faces moved, not every cluster of the
user). The clustering itself is streams/pipeline/people.py."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from streams.pipeline.keys import entry_key, row_changes, split_entry, user_prefix

State = dict[str, Any]  # one user's people, JSON-able (a table value)
Vector = np.ndarray[Any, np.dtype[np.float32]]
STATE_VERSION = 2  # 2: one row per cluster and alias (1 was one value per user: started afresh)


def pack_mean(vector: Vector) -> str:
    """A centroid as base64 float16."""
    return base64.b64encode(np.asarray(vector, dtype=np.float16).tobytes()).decode("ascii")


def unpack_mean(packed: str) -> Vector:
    """The inverse of pack_mean."""
    return np.frombuffer(base64.b64decode(packed), dtype=np.float16).astype(np.float32)


def stored(vector: Vector) -> Vector:
    """``vector`` at the precision it is stored in."""
    return np.asarray(vector, dtype=np.float16).astype(np.float32)


def cluster_id(user_id: str, photo_id: str, face: int) -> str:
    """The id of a cluster started by face number ``face`` of a photo."""
    digest = hashlib.sha256(f"{user_id}/{photo_id}/{face}".encode()).hexdigest()
    return f"p{digest[:15]}"


def empty_state(model: str) -> State:
    """A user with no faces yet, for the face model ``model`` (name@version)."""
    return {"v": STATE_VERSION, "model": model, "faces": 0, "seq": 0, "clusters": {}, "aliases": {}}


HEADER = ("v", "model", "faces", "seq")  # what the user's own row holds; the rest is rows
CLUSTER, ALIAS = "c", "a"  # the names of a user's rows (keys.entry_key(user, name, id))


def rows_of(user_id: str, state: State | None) -> dict[str, Any]:
    """``state`` as table rows, all under the user's prefix: keys.user_prefix(user) -> the
    header; entry_key(user, "c", cluster) -> the cluster; entry_key(user, "a", alias) -> the
    cluster it names now. None: no rows."""
    if state is None:
        return {}
    found: dict[str, Any] = {user_prefix(user_id): {name: state[name] for name in HEADER}}
    for pid, cluster in state["clusters"].items():
        found[entry_key(user_id, CLUSTER, pid)] = cluster
    for alias, target in state["aliases"].items():
        found[entry_key(user_id, ALIAS, alias)] = target
    return found


def from_rows(user_id: str, rows: Iterable[tuple[str, Any]]) -> State | None:
    """The inverse of ``rows_of``: the state of the user's rows (key, value), None without a
    header; clusters in the order they started (as a run that never stopped holds them)."""
    header: dict[str, Any] | None = None
    clusters: list[tuple[str, Any]] = []
    aliases: list[tuple[str, str]] = []
    for key, value in rows:
        if key == user_prefix(user_id):
            header = value
            continue
        _, name, ident = split_entry(key)
        (clusters if name == CLUSTER else aliases).append((ident, value))
    if header is None:
        return None
    clusters.sort(key=lambda c: c[1]["seq"])
    return {**header, "clusters": dict(clusters), "aliases": dict(sorted(aliases))}


def snapshot(state: State | None) -> State | None:
    """A copy of ``state`` that its changes in place (a batch's, a deletion's) leave alone."""
    if state is None:
        return None
    clusters = {pid: dict(cluster) for pid, cluster in state["clusters"].items()}
    return {**state, "clusters": clusters, "aliases": dict(state["aliases"])}


def changed_rows(user_id: str, before: State | None, after: State | None) -> dict[str, Any]:
    """The rows to write for ``user_id``'s people going from ``before`` to ``after``."""
    return row_changes(rows_of(user_id, before), rows_of(user_id, after))


def resolve(state: State, person: str) -> str:
    """The id ``person`` goes by now (itself, or the cluster it was merged into)."""
    aliases: dict[str, str] = state["aliases"]
    return aliases.get(person, person)


NO_SQUARE = {"crop": None, "preview": None}


def persons(state: State, min_faces: int) -> list[dict[str, Any]]:
    """The user's persons (not candidates), most faces first: id, faces, cover
    (streams.pipeline.covers.cover_of; one kept before covers had a square has no crop)."""
    found = [
        {"person_id": pid, "faces": c["count"], "cover": c["cover"] and {**NO_SQUARE, **c["cover"]}}
        for pid, c in state["clusters"].items()
        if c["count"] >= min_faces
    ]
    return sorted(found, key=lambda p: (-p["faces"], p["person_id"]))
