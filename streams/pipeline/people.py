"""People: each user's faces grouped into persons, in the stream, in upload order.

A face with an embedding joins its user's cluster whose centroid is nearest, if that is within
``join_distance`` (Euclidean, the face model's own measure), else it starts a cluster. A
cluster is a *person* from ``min_faces`` faces on (Immich's default is 3); before that it is a
candidate, which is what a stranger in the background stays. Each face moves its cluster's
centroid (the running mean); two clusters whose centroids come within ``merge_distance`` merge
into the older one, and the younger id is kept as an alias, so an id once sent still resolves.

Ids are deterministic: a cluster is named after the face that started it (a hash of user,
photo and face index), and a user's uploads come in their partition's order, so a crash re-run
or a replay of the same uploads gives the same ids and the same state. Centroids are kept at
the precision they are stored in (float16) after every step, so where batches begin and end
(and so when the state went through the table) changes nothing. A photo processed again (a
forced re-drive) keeps the clusters it was given (its photo_state lists them) and counts
nothing twice; its faces are offered as covers again (streams/pipeline/covers.py). A user's
state is kept as rows (streams/pipeline/people_state.py): a small header, one row per cluster
and one per alias, so a batch writes the clusters its faces moved, not every cluster of the
user (``PeopleFindings.rows``). The state is per face model:
embeddings of two models are not comparable, so a new model starts the user's people afresh,
and a replay of the user's photos rebuilds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streams.pipeline import covers
from streams.pipeline.faces import Face, Given, PhotoFaces
from streams.pipeline.people_state import (
    STATE_VERSION,
    State,
    Vector,
    changed_rows,
    cluster_id,
    empty_state,
    pack_mean,
    resolve,
    snapshot,
    stored,
    unpack_mean,
)


@dataclass(frozen=True)
class PeoplePolicy:
    """How close is the same person."""

    join_distance: float = 0.5  # a face to a centroid
    merge_distance: float = 0.4  # a centroid to a centroid
    min_faces: int = 3  # faces that make a candidate a person
    max_clusters: int = 800  # per user (~730 bytes each); least recently seen candidates go
    max_aliases: int = 1000


@dataclass
class Assigned:
    """What one photo's faces became."""

    clusters: list[str | None]  # per face of the photo (None: no embedding)
    persons: list[str | None]  # the same, only where the cluster is a person by now


# ("add", user, cluster, photo) | ("merge", user, younger, older) | ("drop", user, cluster)
Change = tuple[str, ...]


class PeopleStore(Protocol):
    """Where earlier batches left each user's people and each photo's clusters (the tables)."""

    def people_of(self, user_id: str) -> State | None:
        """The user's state, or None."""
        ...

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        """What the photo's faces were given when it was last processed, or None."""
        ...


@dataclass
class PeopleFindings:
    """A batch's clustering: per photo what its faces became, the state after the batch of
    every user whose people it changed, the rows of those states that changed (``rows_of``;
    None: delete), which are all a worker writes, and the changes to the per-person photo
    lists, in order."""

    assigned: list[Assigned | None] = field(default_factory=list)  # per photo searched
    states: dict[str, State] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


class _Clusters:
    """One user's state while a batch works on it: the centroids as one matrix."""

    def __init__(self, user: str, state: State, policy: PeoplePolicy) -> None:
        self.user, self.state, self.policy = user, state, policy
        self.ids: list[str] = list(state["clusters"])
        means = [unpack_mean(state["clusters"][i]["mean"]) for i in self.ids]
        self.means = np.stack(means) if means else np.zeros((0, 128), np.float32)

    def add(
        self, photo_id: str, face: Face, preview: dict[str, Any] | None, changes: list[Change]
    ) -> str:
        """Put ``face`` in a cluster; returns the cluster's id after any merge."""
        state, clusters = self.state, self.state["clusters"]
        vector = np.asarray(face.embedding, dtype=np.float32)
        if not self.ids and self.means.shape[1] != vector.shape[0]:  # a new user, another size
            self.means = np.zeros((0, vector.shape[0]), np.float32)
        state["faces"] += 1
        cover = covers.cover_of(photo_id, face.box, face.crop, preview)
        nearest = self._nearest(vector)
        if nearest is not None and nearest[1] <= self.policy.join_distance:
            row, _ = nearest
            pid = self.ids[row]
            cluster = clusters[pid]
            mean = stored(self.means[row] + (vector - self.means[row]) / (cluster["count"] + 1))
            cluster["count"] += 1
            covers.offer(cluster, cover, face.score)
        else:
            pid = cluster_id(self.user, photo_id, face.index)
            if pid in clusters:  # the same face again (a re-drive with its clusters lost)
                return self._merge_near(pid, changes)
            mean = stored(vector)
            clusters[pid] = {"seq": state["seq"], "count": 1}
            covers.set_cover(clusters[pid], cover, face.score)
            state["seq"] += 1
            self.ids.append(pid)
            self.means = np.vstack([self.means, mean[None, :]])
        clusters[pid]["last"] = state["faces"]
        self._set_mean(pid, mean)
        changes.append(("add", self.user, pid, photo_id))
        pid = self._merge_near(pid, changes)
        self._evict(changes)
        return pid

    def _nearest(self, vector: Vector) -> tuple[int, float] | None:
        if not self.ids:
            return None
        distances = np.linalg.norm(self.means - vector, axis=1)
        row = int(np.argmin(distances))
        return row, float(distances[row])

    def _set_mean(self, pid: str, mean: Vector) -> None:
        self.means[self.ids.index(pid)] = mean
        self.state["clusters"][pid]["mean"] = pack_mean(mean)

    def _merge_near(self, pid: str, changes: list[Change]) -> str:
        """Merge ``pid`` with every cluster its centroid came near; returns who is left."""
        clusters = self.state["clusters"]
        while len(self.ids) > 1:
            row = self.ids.index(pid)
            distances = np.linalg.norm(self.means - self.means[row], axis=1)
            distances[row] = np.inf
            other = int(np.argmin(distances))
            if distances[other] > self.policy.merge_distance:
                break
            a, b = pid, self.ids[other]
            older, younger = (a, b) if clusters[a]["seq"] < clusters[b]["seq"] else (b, a)
            self._merge(younger, older)
            changes.append(("merge", self.user, younger, older))
            pid = older
        return pid

    def _merge(self, younger: str, older: str) -> None:
        clusters, aliases = self.state["clusters"], self.state["aliases"]
        y, o = clusters.pop(younger), clusters[older]
        yrow, orow = self.ids.index(younger), self.ids.index(older)
        total = y["count"] + o["count"]
        mean = stored((self.means[orow] * o["count"] + self.means[yrow] * y["count"]) / total)
        o["count"], o["last"] = total, max(o["last"], y["last"])
        covers.offer(o, y["cover"], covers.held(y))
        self.means = np.delete(self.means, yrow, axis=0)
        del self.ids[yrow]
        self._set_mean(older, mean)
        for alias, target in list(aliases.items()):
            if target == younger:
                aliases[alias] = older
        aliases.pop(older, None)
        aliases[younger] = older
        while len(aliases) > self.policy.max_aliases:  # the least id: the same after a restart
            del aliases[min(aliases)]

    def _evict(self, changes: list[Change]) -> None:
        clusters = self.state["clusters"]
        while len(clusters) > self.policy.max_clusters:
            # candidates first, the least recently seen first
            gone = min(
                clusters,
                key=lambda i: (clusters[i]["count"] >= self.policy.min_faces, clusters[i]["last"]),
            )
            row = self.ids.index(gone)
            self.means = np.delete(self.means, row, axis=0)
            del self.ids[row], clusters[gone]
            changes.append(("drop", self.user, gone))


@dataclass
class _Layered:
    """The batch's findings first, then the store."""

    store: PeopleStore
    seen: dict[str, Given] = field(default_factory=dict)

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        return self.seen.get(photo_id) or self.store.clusters_of(user_id, photo_id)


class PeopleSearch:
    """Clusters a batch's faces in batch order (an earlier photo of the same batch counts)."""

    def __init__(self, store: PeopleStore, policy: PeoplePolicy) -> None:
        self.store, self.policy = store, policy

    def search(self, photos: Sequence[PhotoFaces]) -> PeopleFindings:
        """Each photo's faces into its user's people, in order."""
        found = PeopleFindings()
        users: dict[str, _Clusters] = {}
        changed: set[str] = set()  # users whose state the batch changed (only those are written)
        held: dict[str, State | None] = {}  # as the store held it
        earlier = _Layered(self.store)
        for user, photo, model, faces, preview in photos:
            clusters = users.get(user)
            if clusters is None or clusters.state["model"] != model:
                state = self.store.people_of(user) if clusters is None else None
                if clusters is None:
                    held[user] = snapshot(state)
                if state is None or state.get("model") != model or state.get("v") != STATE_VERSION:
                    state = empty_state(model)
                clusters = users[user] = _Clusters(user, state, self.policy)
                found.states[user] = state
            before = len(found.changes)
            given = earlier.clusters_of(user, photo)
            assigned, covered = self._assign(clusters, photo, faces, preview, given, found.changes)
            if len(found.changes) > before or covered:
                changed.add(user)
            earlier.seen[photo] = Given(model, assigned.clusters)
            found.assigned.append(assigned)
        found.states = {user: state for user, state in found.states.items() if user in changed}
        for user, state in found.states.items():
            found.rows.update(changed_rows(user, held[user], state))
        return found

    def _assign(
        self,
        clusters: _Clusters,
        photo: str,
        faces: list[Face | None],
        preview: dict[str, Any] | None,
        before: Given | None,
        changes: list[Change],
    ) -> tuple[Assigned, bool]:
        """What ``faces`` became, and whether a face of a photo counted already became its
        cluster's cover (a cluster changed though nothing was counted)."""
        state = clusters.state
        covered = False
        if (
            before is not None
            and before.model == state["model"]
            and len(before.clusters) == len(faces)
        ):
            # counted already (a re-drive): the same clusters, nothing counted twice
            ids: list[str | None] = [
                None if c is None else resolve(state, c) for c in before.clusters
            ]
            ids = [c if c in state["clusters"] else None for c in ids]
            for pid, face in zip(ids, faces, strict=True):
                if pid is None or face is None:
                    continue
                # offered again: a backfill gives a cover kept before scores the scored one
                cover = covers.cover_of(photo, face.box, face.crop, preview)
                covered |= covers.offer(state["clusters"][pid], cover, face.score)
        else:
            ids = [None if f is None else clusters.add(photo, f, preview, changes) for f in faces]
            ids = [None if c is None else resolve(state, c) for c in ids]  # merged since
        counts = {pid: state["clusters"][pid]["count"] for pid in ids if pid is not None}
        people = [c if c is not None and counts[c] >= self.policy.min_faces else None for c in ids]
        return Assigned(ids, people), covered


def without_photo(state: State, photo_id: str, given: Given) -> tuple[list[str], list[str]]:
    """Take ``photo_id``'s faces out of ``state`` (in place), as if it had never been seen: each
    face's cluster counts one face fewer and its centroid is the mean without the face (when
    the face's embedding was kept; photos enriched before it was only count); a cluster left
    without faces goes, with its aliases. A person left with fewer than ``min_faces`` faces is
    a candidate again; no other cluster's id changes. Returns (the clusters that lost a face and
    are left, the clusters that went); a cluster whose cover was this photo needs a new one."""
    if given.model != state.get("model"):
        return [], []  # counted under another face model: the user's people started afresh
    touched: list[str] = []
    gone: list[str] = []
    clusters: dict[str, Any] = state["clusters"]
    for index, given_id in enumerate(given.clusters):
        pid = None if given_id is None else resolve(state, given_id)
        cluster = clusters.get(pid) if pid is not None else None
        if pid is None or cluster is None:
            continue  # no embedding, or its cluster was dropped (too many) since
        state["faces"] = max(0, state["faces"] - 1)
        if cluster["count"] <= 1:
            del clusters[pid]
            state["aliases"] = {a: t for a, t in state["aliases"].items() if t != pid}
            touched = [t for t in touched if t != pid]
            gone.append(pid)
            continue
        face = given.faces[index] if given.faces is not None else None
        if face is not None:
            count = cluster["count"]
            mean = unpack_mean(cluster["mean"])
            cluster["mean"] = pack_mean(
                stored((mean * count - unpack_mean(face.embedding)) / (count - 1))
            )
        cluster["count"] -= 1
        if pid not in touched:
            touched.append(pid)
    return touched, gone
