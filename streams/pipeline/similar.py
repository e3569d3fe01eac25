"""Similar photos: exact nearest neighbours of a photo's embedding among its user's photos.

Exact search is fast enough here: one user's 50,000 embeddings (1280 float32 each, 256 MB) are one
matrix-vector product, well under the 50 ms goal on this 2-core CPU (benchmarks/similar.py), so
there is no approximate index. The embeddings are stored in 8 bits a value (recall@20 0.998 against
float16: ``make bench-quantize``), in a table keyed ``keys.photo_key(user, photo)``, so one user's
rows are one prefix scan. Each user's matrix is built on their first query and kept in memory, and
``added`` keeps it up to date as the worker records new embeddings; a photo a loaded matrix lacks
is looked up alone (a 404 costs one key, not the user's rows). The worker drops every matrix on a
rebalance (another worker may have written a user's rows since), and a user's matrix when one of
their photos, or they, are forgotten (the next query reads the rows that are left).

The cache is bounded in users and in bytes, least recently asked first out, whatever ids are
asked: a user with no rows is never kept (33,000 requests for made-up ids once grew a worker by
200 MB, each kept as an empty matrix counted as 0 bytes), and each user counts a floor for its
key and bookkeeping beside the matrix, each photo its id. ``added`` runs on the worker's event
loop: it never waits for a query holding the lock (a 50,000-photo scan), its embedding waits
in a bounded queue for the next holder instead.

Embeddings are L2-normalised by the model runner (streams.inference.tasks.classify), so the dot
product is the cosine; rows are normalised again after the 8-bit round trip.
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

# What a kept user costs beside its rows, counted so that the bound holds for any ids asked:
# measured with tracemalloc at about 1 kB an entry and 130 bytes a photo beyond the characters
# of the ids; both rounded up (tests/pipeline/test_similar.py checks the count against it).
ENTRY_FLOOR_BYTES = 2048
PHOTO_FLOOR_BYTES = 160
PENDING_MAX = 10_000  # embeddings ``added`` may queue while a query holds the lock


@dataclass
class _UserMatrix:
    """One user's embeddings as rows of a matrix that grows by doubling."""

    rows: Matrix
    ids: list[str] = field(default_factory=list)
    where: dict[str, int] = field(default_factory=dict)
    id_bytes: int = 0  # the characters of ``ids``

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
        """The rows, and each photo's id and place in ``ids`` and ``where``."""
        return int(self.rows.nbytes) + len(self.ids) * PHOTO_FLOOR_BYTES + self.id_bytes

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
            self.id_bytes += len(photo)
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
    ``lookup(user, photo)`` gives; at most ``max_users`` users and ``max_bytes`` kept.
    Thread-safe: queries run off the event loop, ``added`` on it."""

    def __init__(self, rows: Rows, lookup: Lookup, max_bytes: int, max_users: int = 10_000) -> None:
        self.rows, self.lookup = rows, lookup
        self.max_bytes, self.max_users = max_bytes, max_users
        self._users: OrderedDict[str, _UserMatrix] = OrderedDict()
        self._bytes = 0  # what ``_users`` holds, as ``_cost`` counts it
        self._lock = threading.Lock()
        # ``added`` (or ``drop``: no photo) while the lock was taken, in order
        self._pending: list[tuple[str, str | None, str]] = []
        self._pending_lock = threading.Lock()  # held for an append or a swap, never longer
        self._stale = False  # the queue overflowed: the matrices may lack rows

    def similar(self, user_id: str, photo_id: str, k: int) -> tuple[list[dict[str, Any]], int]:
        """(the ``k`` photos of the user nearest ``photo_id``, best first with their cosine;
        how many photos were searched). KeyError if the photo has no embedding here."""
        with self._lock:
            self._apply_pending()
            matrix = self._users.get(user_id)
            if matrix is None:
                matrix = _UserMatrix.of(
                    (photo, unpack_embedding(packed)) for photo, packed in self.rows(user_id)
                )
                if not matrix.ids:
                    raise KeyError(photo_id)  # no rows: nothing worth keeping (made-up ids)
                self._keep(user_id, matrix)
                self._apply_pending()  # recorded during the scan, which may have missed them
            elif photo_id not in matrix.where:  # none, or written before the matrix was loaded
                packed = self.lookup(user_id, photo_id)
                if packed is not None:
                    self._put(user_id, matrix, photo_id, packed)
            if user_id in self._users:  # (a queue overflow may have dropped every user)
                self._users.move_to_end(user_id)
            found = matrix.nearest(photo_id, k)
            if found is None:
                raise KeyError(photo_id)
            return found, len(matrix.ids)

    def added(self, user_id: str, photo_id: str, packed: str) -> None:
        """A new or replaced embedding: into the user's matrix if it is in memory (else the
        next query's scan finds it). Never waits for a query: queued while one runs."""
        if not self._lock.acquire(blocking=False):
            with self._pending_lock:
                if len(self._pending) < PENDING_MAX:
                    self._pending.append((user_id, photo_id, packed))
                else:  # the table has every row: rebuilding the matrices loses nothing
                    self._pending.clear()
                    self._stale = True
            return
        try:
            self._apply_pending()
            self._add(user_id, photo_id, packed)
        finally:
            self._lock.release()

    def drop(self, user_id: str) -> None:
        """Drop ``user_id``'s matrix (a photo of theirs, or they, were forgotten). Never waits
        for a query: queued while one runs, like ``added``."""
        if not self._lock.acquire(blocking=False):
            with self._pending_lock:
                if len(self._pending) < PENDING_MAX:
                    self._pending.append((user_id, None, ""))
                else:
                    self._pending.clear()
                    self._stale = True
            return
        try:
            self._apply_pending()
            self._drop(user_id)
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Drop every matrix (a rebalance: the rows may have changed elsewhere)."""
        with self._lock:
            with self._pending_lock:
                self._pending.clear()
                self._stale = False
            self._users.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Memory the kept users hold, as counted against ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        """Users kept."""
        return len(self._users)

    def _apply_pending(self) -> None:
        """With ``_lock`` held: what ``added`` queued meanwhile, in order."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
            stale, self._stale = self._stale, False
        if stale:
            self._users.clear()
            self._bytes = 0
        for user_id, photo_id, packed in pending:
            if photo_id is None:
                self._drop(user_id)
            else:
                self._add(user_id, photo_id, packed)

    def _drop(self, user_id: str) -> None:
        matrix = self._users.pop(user_id, None)
        if matrix is not None:
            self._bytes -= _cost(user_id, matrix)

    def _add(self, user_id: str, photo_id: str, packed: str) -> None:
        matrix = self._users.get(user_id)
        if matrix is not None:
            self._put(user_id, matrix, photo_id, packed)

    def _put(self, user_id: str, matrix: _UserMatrix, photo_id: str, packed: str) -> None:
        before = matrix.nbytes
        matrix.put(photo_id, unpack_embedding(packed))
        self._bytes += matrix.nbytes - before
        self._evict(keep=user_id)

    def _keep(self, user_id: str, matrix: _UserMatrix) -> None:
        self._users[user_id] = matrix
        self._bytes += _cost(user_id, matrix)
        self._evict(keep=user_id)

    def _evict(self, keep: str) -> None:
        """Least recently asked out until both bounds hold (the user just asked stays)."""
        while (self._bytes > self.max_bytes or len(self._users) > self.max_users) and len(
            self._users
        ) > 1:
            oldest = next(u for u in self._users if u != keep)
            self._bytes -= _cost(oldest, self._users.pop(oldest))


def _cost(user_id: str, matrix: _UserMatrix) -> int:
    """A kept user's bytes: the matrix, its key and a floor for the entry."""
    return matrix.nbytes + len(user_id) + ENTRY_FLOOR_BYTES
