"""Similar photos: exact neighbours against a brute-force check, the index kept up to date, the
memory bound, and keys that keep users apart."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable, Iterable

import numpy as np
import pytest

from streams.pipeline.dedup import pack_embedding, unpack_embedding
from streams.pipeline.keys import photo_key, split_key, user_prefix
from streams.pipeline.similar import SimilarPhotos


def vectors(n: int, width: int = 64, seed: int = 0) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, width)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return {f"p{i}": row.tolist() for i, row in enumerate(rows)}


class Table:
    """A user -> rows source that counts its scans, and its point lookups."""

    def __init__(self, users: dict[str, dict[str, list[float]]]) -> None:
        self.packed = {
            u: {p: pack_embedding(v) for p, v in rows.items()} for u, rows in users.items()
        }
        self.scans = self.lookups = 0

    def rows(self, user: str) -> Iterable[tuple[str, str]]:
        self.scans += 1
        return list(self.packed.get(user, {}).items())

    def one(self, user: str, photo: str) -> str | None:
        self.lookups += 1
        return self.packed.get(user, {}).get(photo)


def index_of(table: Table, max_bytes: int = 1 << 30) -> SimilarPhotos:
    return SimilarPhotos(table.rows, table.one, max_bytes)


def brute_force(packed: dict[str, str], photo: str, k: int) -> list[str]:
    mine = unpack_embedding(packed[photo])
    scores = {
        p: float(unpack_embedding(v) @ mine) / float(np.linalg.norm(unpack_embedding(v)))
        for p, v in packed.items()
        if p != photo
    }
    return sorted(scores, key=lambda p: -scores[p])[:k]


def test_the_answer_is_the_exact_nearest_photos_best_first_without_the_photo_itself() -> None:
    table = Table({"u": vectors(500)})
    index = index_of(table)
    for photo in ("p0", "p7", "p499"):
        found, searched = index.similar("u", photo, 20)
        assert searched == 500
        assert [f["photo_id"] for f in found] == brute_force(table.packed["u"], photo, 20)
        scores = [f["score"] for f in found]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert table.scans == 1  # one scan, then the matrix in memory


def test_k_larger_than_the_library_lists_every_other_photo() -> None:
    table = Table({"u": vectors(3)})
    found, _ = index_of(table).similar("u", "p1", 20)
    assert sorted(f["photo_id"] for f in found) == ["p0", "p2"]


def test_a_photo_without_an_embedding_is_a_key_error() -> None:
    index = index_of(Table({"u": vectors(3)}))
    with pytest.raises(KeyError):
        index.similar("u", "nope", 5)
    with pytest.raises(KeyError):
        index.similar("someone else", "p0", 5)


def test_an_added_embedding_is_found_at_once_and_a_replaced_one_moves() -> None:
    users = {"u": vectors(50)}
    table = Table(users)
    index = index_of(table)
    index.similar("u", "p0", 5)  # the matrix is in memory now
    twin = pack_embedding(users["u"]["p0"])
    index.added("u", "twin", twin)  # recorded by the worker; the table has it too
    table.packed["u"]["twin"] = twin
    found, searched = index.similar("u", "p0", 1)
    assert found[0]["photo_id"] == "twin" and found[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert searched == 51 and table.scans == 1
    index.added("u", "twin", pack_embedding(users["u"]["p9"]))  # re-enriched: a new embedding
    assert index.similar("u", "p9", 1)[0][0]["photo_id"] == "twin"
    assert index.similar("u", "p0", 1)[0][0]["photo_id"] != "twin"
    for i in range(100):  # the matrix grows past its first rows
        index.added("u", f"new{i}", pack_embedding(vectors(1, seed=i + 1)["p0"]))
    assert index.similar("u", "p0", 5)[1] == 151 and table.scans == 1


def test_a_photo_recorded_before_the_users_matrix_was_built_is_read_from_the_table() -> None:
    table = Table({"u": vectors(5)})
    index = index_of(table)
    index.added("u", "p0", table.packed["u"]["p0"])  # no matrix yet: nothing kept
    assert index.nbytes == 0
    index.similar("u", "p0", 2)
    table.packed["u"]["late"] = table.packed["u"]["p1"]  # written elsewhere (another worker)
    found, searched = index.similar("u", "late", 1)  # unknown to the matrix: looked up alone
    assert searched == 6 and found[0]["photo_id"] == "p1"
    assert table.scans == 1 and table.lookups == 1
    with pytest.raises(KeyError):  # a photo the user lacks costs one lookup, not a scan
        index.similar("u", "nope", 1)
    assert table.scans == 1 and table.lookups == 2
    index.forget()  # a rebalance
    index.similar("u", "p0", 1)
    assert table.scans == 2


def test_memory_stays_under_the_bound_the_least_recently_asked_user_going_first() -> None:
    users = {u: vectors(100, seed=i) for i, u in enumerate(("a", "b", "c"))}
    table = Table(users)
    probe = index_of(table)
    probe.similar("a", "p0", 1)
    one = probe.nbytes  # one user as counted: the rows, the ids, the key and a floor
    assert one > 100 * 64 * 4  # more than the matrix alone
    table.scans = 0
    index = index_of(table, 2 * one)
    index.similar("a", "p0", 1)
    index.similar("b", "p0", 1)
    index.similar("a", "p0", 1)  # a is the most recent now
    index.similar("c", "p0", 1)  # evicts b
    assert index.nbytes <= 2 * one and table.scans == 3
    index.similar("a", "p0", 1)
    assert table.scans == 3
    index.similar("b", "p0", 1)
    assert table.scans == 4


def test_a_flood_of_unknown_user_ids_keeps_nothing() -> None:
    # the attack: 33,000 requests for made-up long ids grew a worker by 200 MB
    index = index_of(Table({"u": vectors(3)}))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(33_000):
            with pytest.raises(KeyError):
                index.similar(f"{i:06d}" + "x" * 1000, "p0", 5)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(index) == 0 and index.nbytes == 0
    assert grown < 100_000, f"{grown} bytes kept for users without a photo"


def test_users_with_photos_stay_within_the_entry_and_the_byte_bound_whatever_their_ids() -> None:
    one_photo = pack_embedding([1.0, 0.0, 0.0, 0.0])

    def rows(user: str) -> list[tuple[str, str]]:
        return [(user + "-photo", one_photo)]  # every id asked has one photo: the worst case

    def flood(index: SimilarPhotos, users: int) -> int:
        """Bytes the index holds after ``users`` long ids, measured by tracemalloc."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(users):
                user = f"{i:06d}" + "u" * 1000
                assert index.similar(user, user + "-photo", 1)[1] == 1
            return int(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()

    by_count = SimilarPhotos(rows, lambda user, photo: None, max_bytes=1 << 40, max_users=100)
    flood(by_count, 2_000)
    assert len(by_count) == 100

    max_bytes = 300_000  # about 60 users of 1000-character ids
    by_bytes = SimilarPhotos(rows, lambda user, photo: None, max_bytes, max_users=1 << 30)
    held = flood(by_bytes, 5_000)
    assert by_bytes.nbytes <= max_bytes and 10 < len(by_bytes) < 100
    assert held <= max_bytes, f"{held} bytes held, {by_bytes.nbytes} counted"


def during_a_long_query(table: Table, call: Callable[[SimilarPhotos], None]) -> SimilarPhotos:
    """An index whose query of user "u" scans until ``call`` has run (or waited 2 s) in another
    thread; fails when ``call`` waited for the query's lock (it runs on the worker's event loop:
    it must never wait behind a user's scan)."""
    scanning, release = threading.Event(), threading.Event()

    def slow_rows(user: str) -> Iterable[tuple[str, str]]:
        scanning.set()
        assert release.wait(10)
        return table.rows(user)

    index = SimilarPhotos(slow_rows, table.one, 1 << 30)
    query = threading.Thread(target=index.similar, args=("u", "p0", 1))
    query.start()
    assert scanning.wait(10)
    caller = threading.Thread(target=call, args=(index,))
    caller.start()
    caller.join(2)
    alive = caller.is_alive()
    release.set()
    query.join(10)
    assert not alive, "the call waited for the query's lock"
    return index


def test_an_embedding_recorded_during_a_long_query_waits_for_it_instead_of_blocking() -> None:
    table = Table({"u": vectors(5)})
    late = pack_embedding(table_vector(table, "p0"))
    index = during_a_long_query(table, lambda index: index.added("u", "late", late))
    found, searched = index.similar("u", "p0", 1)  # the queued embedding is in the matrix now
    assert searched == 6 and found[0]["photo_id"] == "late" and table.scans == 1


def test_a_forgotten_photo_leaves_the_answers_at_once_even_when_dropped_during_a_query() -> None:
    table = Table({"u": vectors(20), "v": vectors(5)})
    index = index_of(table)
    twin = table.packed["u"]["p0"]
    index.added("u", "twin", twin)
    table.packed["u"]["twin"] = twin
    index.similar("u", "p0", 1)
    index.similar("v", "p0", 1)
    del table.packed["u"]["twin"]  # the worker deleted its key, then drops the user's matrix
    index.drop("u")
    found, searched = index.similar("u", "p0", 1)
    assert found[0]["photo_id"] != "twin" and searched == 20 and table.scans == 3
    index.similar("v", "p0", 1)
    assert table.scans == 3  # the other user's matrix stayed

    index = during_a_long_query(table, lambda index: index.drop("u"))
    index.similar("u", "p0", 1)  # the queued drop ran after the scan: the rows are read again
    assert table.scans == 5


def table_vector(table: Table, photo: str) -> list[float]:
    return [float(x) for x in unpack_embedding(table.packed["u"][photo])]


def test_embeddings_of_another_width_are_left_out_not_mixed() -> None:
    table = Table({"u": vectors(10)})
    table.packed["u"]["old-model"] = pack_embedding([1.0] * 32)
    index = index_of(table)
    found, searched = index.similar("u", "p0", 20)
    assert searched == 10 and "old-model" not in {f["photo_id"] for f in found}


def test_keys_keep_users_apart_whatever_their_ids_hold() -> None:
    for user, photo in [("a", "b/c"), ("a/b", "c"), ("100%", "x"), ("ü ser", "p")]:
        key = photo_key(user, photo)
        assert split_key(key) == (user, photo) and key.startswith(user_prefix(user))
    assert not photo_key("a/b", "c").startswith(user_prefix("a"))
    assert not photo_key("ab", "c").startswith(user_prefix("a"))
