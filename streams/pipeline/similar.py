"""Similar photos: exact nearest neighbours of a photo's embedding among its user's photos.

Exact search is fast enough here: one user's 50,000 embeddings (1280 float32 each, 256 MB) are
one matrix-vector product, well under the 50 ms goal on this 2-core CPU (benchmarks/similar.py),
so there is no approximate index and no recall to lose. The embeddings live in a table keyed
``keys.photo_key(user, photo)``, so one user's rows are one prefix scan. Each user's matrix is
built on their first query and kept in memory (least recently asked first out past
``max_bytes``), and ``added`` keeps it up to date as the worker records new embeddings; a photo
a loaded matrix lacks is looked up alone (a 404 costs one key, not the user's rows). The worker
drops every matrix on a rebalance: another worker may have written a user's rows since.

Embeddings are L2-normalised by the model runner (streams.inference.tasks.classify), so the dot
product is the cosine; rows are normalised again after the float16 round trip.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.pipeline.dedup import unpack_embedding

Rows = Callable[[str], Iterable[tuple[str, str]]]  # user -> (photo id, packed embedding) pairs
Lookup = Callable[[str, str], str | None]  # (user, photo) -> its packed embedding, or None
Matrix = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class _UserMatrix:
    """One user's embeddings as rows of a matrix that grows by doubling."""

    rows: Matrix
    ids: list[str] = field(default_factory=list)
    where: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, Matrix]]) -> _UserMatrix:
        vectors = dict(pairs)  # a photo once, whatever the source repeats
        widths = Counter(len(v) for v in vectors.values())
        width = widths.most_common(1)[0][0] if widths else 0
        kept = {p: v for p, v in vectors.items() if len(v) == width}  # one model's width only
        matrix = cls(np.zeros((max(len(kept), 16), width), dtype=np.float32))
        for photo, vector in kept.items():
            matrix.put(photo, vector)
        return matrix

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes)

    def put(self, photo: str, vector: Matrix) -> None:
        if not self.ids and len(vector) != self.rows.shape[1]:  # the first row sets the width
            self.rows = np.zeros((len(self.rows), len(vector)), dtype=np.float32)
        if len(vector) != self.rows.shape[1]:
            return  # another model's embedding: not comparable (a backfill rewrites them all)
        row = self.where.get(photo)
        if row is None:
            row = len(self.ids)
            if row == len(self.rows):
                grown = np.zeros((2 * len(self.rows), self.rows.shape[1]), dtype=np.float32)
                grown[:row] = self.rows
                self.rows = grown
            self.ids.append(photo)
            self.where[photo] = row
        self.rows[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)

    def nearest(self, photo: str, k: int) -> list[dict[str, Any]] | None:
        row = self.where.get(photo)
        if row is None:
            return None
        scores = self.rows[: len(self.ids)] @ self.rows[row]
        scores[row] = -np.inf  # never the photo itself
        k = min(k, len(self.ids) - 1)
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [{"photo_id": self.ids[i], "score": round(float(scores[i]), 4)} for i in top]


class SimilarPhotos:
    """Each user's "more like this", from the rows ``rows(user)`` gives and the one row
    ``lookup(user, photo)`` gives; thread-safe (queries run off the event loop, ``added`` on
    it)."""

    def __init__(self, rows: Rows, lookup: Lookup, max_bytes: int) -> None:
        self.rows, self.lookup, self.max_bytes = rows, lookup, max_bytes
        self._users: OrderedDict[str, _UserMatrix] = OrderedDict()
        self._lock = threading.Lock()

    def similar(self, user_id: str, photo_id: str, k: int) -> tuple[list[dict[str, Any]], int]:
        """(the ``k`` photos of the user nearest ``photo_id``, best first with their cosine;
        how many photos were searched). KeyError if the photo has no embedding here."""
        with self._lock:
            matrix = self._users.get(user_id)
            if matrix is None:
                matrix = _UserMatrix.of(
                    (photo, unpack_embedding(packed)) for photo, packed in self.rows(user_id)
                )
                self._users[user_id] = matrix
                self._evict(keep=user_id)
            elif photo_id not in matrix.where:  # none, or written before the matrix was loaded
                packed = self.lookup(user_id, photo_id)
                if packed is not None:
                    matrix.put(photo_id, unpack_embedding(packed))
            self._users.move_to_end(user_id)
            found = matrix.nearest(photo_id, k)
            if found is None:
                raise KeyError(photo_id)
            return found, len(matrix.ids)

    def added(self, user_id: str, photo_id: str, packed: str) -> None:
        """A new or replaced embedding: into the user's matrix if it is in memory (else the
        next query's scan finds it)."""
        with self._lock:
            matrix = self._users.get(user_id)
            if matrix is not None:
                matrix.put(photo_id, unpack_embedding(packed))
                self._evict(keep=user_id)

    def forget(self) -> None:
        """Drop every matrix (a rebalance: the rows may have changed elsewhere)."""
        with self._lock:
            self._users.clear()

    @property
    def nbytes(self) -> int:
        """Memory the matrices hold."""
        return sum(m.nbytes for m in self._users.values())

    def _evict(self, keep: str) -> None:
        while self.nbytes > self.max_bytes and len(self._users) > 1:
            oldest = next(u for u in self._users if u != keep)
            del self._users[oldest]
