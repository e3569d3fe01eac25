"""Similar photos: query latency at 1k, 10k and 50k photos of one user, exact search.

    .venv/bin/python -m benchmarks.similar        (make bench-similar)
    .venv/bin/python -m benchmarks.similar --smoke    # seconds: 1k photos, 1k others, 20 queries

What runs is what ``GET /users/{u}/photos/{p}/similar?k=20`` runs: ``SimilarPhotos.similar``
over rows read by ``streams.worker.tables.user_rows`` from a RocksDB database (rocksdict, raw
mode, keys and values JSON-encoded as Faust's table serializers write them), holding the user's
photos beside 20,000 photos of other users. Per size: the first query (the prefix scan, the
rows unpacked into a matrix) and then ``QUERIES`` queries of random photos from memory
(p50, p99), and the matrix's memory. Not included: the HTTP hop and Faust's routing (a local
aiohttp round trip, about a millisecond).

Writes benchmarks/results/similar.json and similar.md (not in --smoke), and prints the table.

The embeddings are random unit vectors of MobileNetV2's 1280 dimensions packed as the worker packs
them (8 bits a value): exact search costs the same whatever the vectors hold, and its recall
against what is stored is 1 by construction (it is checked against a brute-force sort in
tests/pipeline/test_similar).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rocksdict import Options, Rdict

from benchmarks import out_of, output_args, write_results
from benchmarks.stats import percentile
from streams.pipeline.dedup import pack_embedding
from streams.pipeline.keys import photo_key
from streams.pipeline.similar import SimilarPhotos
from streams.worker.tables import user_rows

SIZES = (1_000, 10_000, 50_000)
OTHERS = 20_000  # other users' photos in the same database
WIDTH, K, QUERIES = 1280, 20, 500
MISSING = 50  # queries of a photo the user lacks
NEIGHBOURS = ("alic", "alice2", "bob", "zoe")  # the other users; alice's prefix's neighbours too
GOAL_P99_MS = 50.0


class JsonStore:
    """The part of faust.stores.rocksdb.Store that ``user_rows`` reads: one database per
    partition, keys and values JSON as Faust's default table serializers write them."""

    def __init__(self, path: Path) -> None:
        self._dbs = {0: Rdict(str(path), Options(raw_mode=True))}

    def _encode_key(self, key: str) -> bytes:
        return json.dumps(key).encode()

    def _decode_key(self, raw: bytes) -> Any:
        return json.loads(raw)

    def _decode_value(self, raw: bytes) -> Any:
        return json.loads(raw)

    def put(self, key: str, value: str) -> None:
        self._dbs[0][self._encode_key(key)] = json.dumps(value).encode()

    def get(self, key: str) -> Any:
        raw = self._dbs[0].get(self._encode_key(key))
        return None if raw is None else self._decode_value(raw)

    def close(self) -> None:
        self._dbs[0].close()


class Table:
    """A table whose ``data`` is the store (as a Faust table's is)."""

    def __init__(self, store: JsonStore) -> None:
        self.data = store


def fill(store: JsonStore, user: str, photos: int, rng: np.random.Generator) -> None:
    for start in range(0, photos, 5000):
        rows = rng.standard_normal((min(5000, photos - start), WIDTH)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        for i, row in enumerate(rows):
            store.put(photo_key(user, f"{user}-photo-{start + i:06d}"), pack_embedding(row))


def measure(
    size: int, root: Path, seed: int, others: int = OTHERS, queries: int = QUERIES
) -> dict[str, Any]:
    """One size: alice's ``size`` photos beside ``others`` of other users, ``queries`` timed."""
    rng = np.random.default_rng(seed)
    store = JsonStore(root / f"db-{size}")
    try:
        fill(store, "alice", size, rng)
        for other in NEIGHBOURS:
            fill(store, other, others // len(NEIGHBOURS), rng)
        table = Table(store)
        index = SimilarPhotos(
            lambda user: user_rows(table, user),
            lambda user, photo: store.get(photo_key(user, photo)),
            max_bytes=1 << 31,
        )
        photos = [f"alice-photo-{i:06d}" for i in range(size)]
        started = time.perf_counter()
        found, searched = index.similar("alice", photos[0], K)
        first_ms = (time.perf_counter() - started) * 1000
        assert searched == size and len(found) == K, (searched, len(found))
        picks = random.Random(seed).choices(photos, k=queries)
        times = []
        for photo in picks:
            started = time.perf_counter()
            index.similar("alice", photo, K)
            times.append((time.perf_counter() - started) * 1000)
        missing = []  # a photo the user does not have (a 404): one key looked up
        for i in range(MISSING):
            started = time.perf_counter()
            with contextlib.suppress(KeyError):
                index.similar("alice", f"no-such-photo-{i}", K)
            missing.append((time.perf_counter() - started) * 1000)
        return {
            "photos": size,
            "first_query_ms": round(first_ms, 1),
            "missing_p50_ms": round(percentile(missing, 50), 3),
            "p50_ms": round(percentile(times, 50), 2),
            "p99_ms": round(percentile(times, 99), 2),
            "matrix_mb": round(index.nbytes / 2**20, 1),
        }
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every size; write benchmarks/results/similar.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--others", type=int, default=OTHERS, help="other users' photos")
    parser.add_argument("--queries", type=int, default=QUERIES, help="timed queries per size")
    output_args(parser, smoke="1,000 photos beside 1,000 of others, 20 queries")
    args = parser.parse_args(argv)
    if args.smoke:  # the scan, the matrix and the queries once each; p99 of 20 means nothing
        args.sizes, args.others, args.queries = [1_000], 1_000, 20
    rows = []
    with tempfile.TemporaryDirectory(prefix="darkroom-similar-") as tmp:
        for size in args.sizes:
            rows.append(measure(size, Path(tmp), size, args.others, args.queries))
            print(rows[-1], flush=True)
    result = {
        "k": K,
        "queries": args.queries,
        "width": WIDTH,
        "goal_p99_ms": GOAL_P99_MS,
        "rows": rows,
    }
    write_results("similar", result, report(result), out_of(args))


def report(result: dict[str, Any]) -> str:
    """The markdown summary."""
    lines = [
        "# Similar photos: query latency, exact search, one user",
        "",
        f"k = {result['k']}, {result['queries']} queries per size, {result['width']}-d 8-bit "
        f"embeddings; goal p99 <= {result['goal_p99_ms']:g} ms at 50k.",
        "",
        "| photos | first query (scan + matrix) ms | p50 ms | p99 ms | matrix MB | "
        "a photo the user lacks (404), p50 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['photos']:,} | {row['first_query_ms']} | {row['p50_ms']} | "
            f"{row['p99_ms']} | {row['matrix_mb']} | {row['missing_p50_ms']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
