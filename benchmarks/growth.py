"""Changelog bytes written per upload, by the size of the uploading user's library.

    .venv/bin/python -m benchmarks.growth    # ~20 min on 2 cores (make bench-capacity runs it)
    .venv/bin/python -m benchmarks.growth --smoke    # ~5 s: that it runs

Most of the time is filling the 50,000-photo library; ``--sizes 10,1000`` takes seconds.
Writes benchmarks/results/growth.json and growth.md (not in --smoke).

A table write is a changelog record (its JSON key and value; a delete, the key's tombstone), so
what a batch writes is what Kafka stores, replicates and compacts for it. One user per library
size (10, 1,000, 10,000 and 50,000 photos) is filled through the worker's own path (the
pipeline a worker runs over its tables, ``streams.worker.readers.table_pipeline``, then the
worker's ``Recorder``) and then uploads ``--measured`` more photos in batches of 16; the report
is the bytes written per upload, per table, for each size, and the largest over the smallest.

The engine is not run for each photo (60,000 inferences would take an hour here): the real
engine enriches the sample photos once, and each upload gets the fields of one of them with a
perceptual hash, DCT block and embedding of its own drawn at random (not a near-duplicate of
any other photo, as most of a library is) and its faces' embeddings moved a little (the same
few people again and again). Two shares make the state a large library holds: ``--copies``
of the uploads are copies of the user's first photo (one near-duplicate group that grows with
the library: a burst, a re-uploaded favourite), and ``--strangers`` of the faces are a new
person each (the candidates that fill a user's people up to ``people_max_clusters``). What it
leaves out: labels and tags come from 16 photos (a real user's histograms hold more names, up
to the tag vocabulary). The tables are RocksDB (rocksdict) as the worker's are, so lists and
rows are read as ranges.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from rocksdict import Rdict

from benchmarks import out_of, output_args, ran_on, write_results
from benchmarks.engine import machine
from streams.config import load_settings
from streams.contracts.codec import codec_from_settings
from streams.contracts.events import new_upload
from streams.contracts.schemas import EventType, SchemaRepository
from streams.engine import Enricher, PhotoInput
from streams.engine.results import Enriched
from streams.logs import configure_logging
from streams.pipeline import RawMessage
from streams.pipeline.keys import entry_prefix, user_prefix
from streams.samples import PHOTOS, encode_jpeg, load_photo
from streams.worker.forgetting import Forgetting
from streams.worker.metrics import WorkerMetrics
from streams.worker.readers import table_pipeline
from streams.worker.recording import Recorder
from streams.worker.tables import Tables

if TYPE_CHECKING:
    from faust.types import EventT

SIZES = (10, 1_000, 10_000, 50_000)
BATCH = 16  # the worker's default batch
SMOKE_SIZES, SMOKE_MEASURED = (10, 100), 2 * BATCH  # --smoke: two sizes, two batches each
FILL_BATCH = 64  # filling a library: what it holds does not depend on the batches
START = datetime(2026, 1, 1, tzinfo=UTC)


class Changelog:
    """A table as the worker's: RocksDB underneath, every write counted as the changelog
    record it makes (JSON key and value, as Faust's serializers write them)."""

    def __init__(self, path: Path) -> None:
        self.db = Rdict(str(path))
        self.bytes = self.records = 0

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.db.get(key)
        return default if raw is None else json.loads(raw)

    def __getitem__(self, key: str) -> Any:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        self.db[key] = text
        self.bytes += len(json.dumps(key).encode()) + len(text.encode())
        self.records += 1

    def __delitem__(self, key: str) -> None:
        del self.db[key]
        self.bytes += len(json.dumps(key).encode())
        self.records += 1

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for key, raw in self.db.items(from_key=prefix):
            assert isinstance(key, str), key  # written by __setitem__: always a str
            if not key.startswith(prefix):
                break
            yield key, json.loads(raw)

    def items(self) -> Iterator[tuple[str, Any]]:
        return self.scan("")

    def close(self) -> None:
        self.db.close()


class Library(Enricher):
    """Stands in for the engine (module docstring): the sample photos' real fields, each
    upload with a hash, block and embedding of its own. It loads no model, so it does not
    run Enricher's constructor; the pipeline calls only submit, complete and abandon."""

    def __init__(
        self, bases: list[Enriched], versions: dict[str, str], copies: float, strangers: float
    ) -> None:
        self.bases, self.versions = bases, versions
        self.copies, self.strangers = copies, strangers
        self.rng = np.random.default_rng(7)
        self.firsts: dict[str, Enriched] = {}  # user -> their first photo, which copies copy

    def model_versions_for(self, user_id: str) -> dict[str, str]:
        return self.versions

    def submit(self, items: Sequence[PhotoInput]) -> Any:
        return list(items)

    def complete(self, pending: Any) -> list[Any]:
        return [self._one(item) for item in pending]

    def abandon(self, pending: Any) -> None:
        return None

    def _one(self, item: PhotoInput) -> Enriched:
        first = self.firsts.get(item.user_id)
        if first is not None and self.rng.random() < self.copies:
            return replace(first, photo_id=item.photo_id)
        found = self._new(item)
        self.firsts.setdefault(item.user_id, found)
        return found

    def _new(self, item: PhotoInput) -> Enriched:
        base = self.bases[int(self.rng.integers(len(self.bases)))]
        variants = [int(v) for v in self.rng.integers(0, 2**63, 8, dtype=np.int64)]
        found = dict(base.fields, phash=f"{variants[0]:016x}")
        if found.get("embedding") is not None:
            found["embedding"] = self._unit(len(found["embedding"])).tolist()
        faces = []
        for face in found.get("faces") or []:
            if face.get("embedding") is not None:
                vector = np.asarray(face["embedding"])
                if self.rng.random() < self.strangers:  # someone never seen: as far as strangers
                    moved = self._unit(128) * np.linalg.norm(vector)
                else:
                    moved = vector + self.rng.normal(0, 0.01, 128)
                face = {**face, "embedding": moved.tolist()}
            faces.append(face)
        found["faces"] = faces or found.get("faces")
        block = self.rng.normal(0, 1, 64).tolist()
        return replace(
            base, photo_id=item.photo_id, fields=found, phash_variants=variants, dct_block=block
        )

    def _unit(self, size: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        vector = self.rng.normal(0, 1, size)
        return np.asarray(vector / np.linalg.norm(vector))


def sample_results() -> tuple[list[Enriched], dict[str, str]]:
    """The real engine's results for every sample photo, and its model versions."""
    settings = load_settings()
    enricher = Enricher.from_settings(settings)
    try:
        data = [PhotoInput(name, encode_jpeg(load_photo(name)), "u") for name in PHOTOS]
        results = enricher.complete(enricher.submit(data))
        versions = enricher.model_versions
    finally:
        enricher.close()
    return [r for r in results if isinstance(r, Enriched)], versions


def run(measured: int, sizes: Sequence[int], copies: float, strangers: float) -> dict[str, Any]:
    settings = load_settings()
    bases, versions = sample_results()
    codec = codec_from_settings(settings, SchemaRepository(settings.paths.schemas))
    tiny = encode_jpeg(np.full((8, 8, 3), 128, np.uint8))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="darkroom-growth-") as folder:
        tables = Tables(**{f.name: Changelog(Path(folder) / f.name) for f in fields(Tables)})
        forgetting = Forgetting(tables)
        library = Library(bases, versions, copies, strangers)
        pipeline = table_pipeline(settings, library, tables, refuse=forgetting)
        recorder = Recorder(tables, WorkerMetrics(), library.model_versions_for, None, forgetting)
        offset = 0

        def upload(user: str, first: int, count: int, batch: int) -> None:
            """Photos ``first`` .. ``first + count - 1`` of ``user``, uploaded a second apart."""
            nonlocal offset
            for start in range(first, first + count, batch):
                messages = []
                for i in range(start, min(first + count, start + batch)):
                    record = new_upload(
                        photo_id=f"{user}-{i:06d}",
                        user_id=user,
                        content_type="image/jpeg",
                        byte_size=len(tiny),
                        blob=tiny,
                        uploaded_at=START + timedelta(seconds=i),
                    )
                    value = codec.encode(EventType.PHOTO_UPLOADED, record)
                    messages.append(RawMessage("photos.uploaded", 0, offset, user.encode(), value))
                    offset += 1
                done = pipeline.run(messages)
                # the recorder reads only what Consumed has of Faust's event (its docstring)
                events = cast("list[EventT[Any]]", [Consumed(m.partition) for m in messages])
                recorder.record(done, events)

        for size in sizes:
            user = f"user-{size}"
            started = time.perf_counter()
            upload(user, 0, size, FILL_BATCH)
            filled = time.perf_counter() - started
            before = {name: _counts(getattr(tables, name)) for name in TABLE_NAMES}
            upload(user, size, measured, BATCH)  # newer than every photo of the library
            after = {name: _counts(getattr(tables, name)) for name in TABLE_NAMES}
            per_table = {
                name: (after[name][0] - before[name][0]) / measured for name in TABLE_NAMES
            }
            rows.append(
                {
                    "library": size,
                    "bytes_per_upload": round(sum(per_table.values()), 1),
                    "records_per_upload": round(
                        sum(after[n][1] - before[n][1] for n in TABLE_NAMES) / measured, 2
                    ),
                    "per_table": {n: round(b, 1) for n, b in per_table.items()},
                    "fill_seconds": round(filled, 1),
                    "group_copies": _held(tables.dup_groups, user),
                    "people_clusters": _held(tables.people, user, "c"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        for f in fields(Tables):
            getattr(tables, f.name).close()
    smallest, largest = rows[0]["bytes_per_upload"], max(r["bytes_per_upload"] for r in rows)
    return {
        "machine": machine(),
        "measured_uploads": measured,
        "copies": copies,
        "strangers": strangers,
        "batch": BATCH,
        "sample_photos": len(bases),
        "rows": rows,
        "largest_over_smallest": round(largest / smallest, 3),
    }


TABLE_NAMES = [f.name for f in fields(Tables)]


def _held(table: Changelog, user: str, name: str = "") -> int:
    """How many rows of ``user`` (under the list ``name``) ``table`` holds."""
    prefix = entry_prefix(user, name) if name else user_prefix(user)
    return sum(1 for _ in table.scan(prefix))


def _counts(table: Changelog) -> tuple[int, int]:
    return table.bytes, table.records


class Consumed:
    """What the recorder reads of a consumed event: its partition (and a weak reference, which
    makes it Faust's current event while its writes are made)."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def report(result: dict[str, Any]) -> str:
    rows = result["rows"]
    names = [n for n in TABLE_NAMES if any(r["per_table"][n] for r in rows)]
    lines = [
        "# Changelog bytes written per upload, by library size",
        "",
        ran_on("growth", result["machine"])
        + f": {result['measured_uploads']} uploads measured per size "
        f"(batches of {result['batch']}), after the library was filled through the same path; "
        f"{result['copies']:.0%} of uploads copies of the user's first photo, "
        f"{result['strangers']:.0%} of faces strangers'.",
        "",
        "| photos in the library | group's copies | people's clusters | bytes per upload | "
        "records per upload | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for r in rows:
        cells = " | ".join(f"{r['per_table'][n]:,.0f}" for n in names)
        lines.append(
            f"| {r['library']:,} | {r['group_copies']:,} | {r['people_clusters']:,} | "
            f"{r['bytes_per_upload']:,.0f} | {r['records_per_upload']} | "
            f"{cells} |"
        )
    lines += ["", f"Largest over smallest: {result['largest_over_smallest']} (goal: <= 1.2).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=int, default=256, help="uploads measured per size")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="library sizes, comma-separated"
    )
    parser.add_argument(
        "--copies", type=float, default=0.02, help="share of uploads copying the first photo"
    )
    parser.add_argument(
        "--strangers", type=float, default=0.3, help="share of faces that are a new person"
    )
    output_args(
        parser,
        smoke=f"libraries of {' and '.join(map(str, SMOKE_SIZES))} photos, "
        f"{SMOKE_MEASURED} uploads measured",
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:  # the whole path at two sizes; the ratio means nothing at this size
        sizes, args.measured = list(SMOKE_SIZES), SMOKE_MEASURED
    result = run(args.measured, sizes, args.copies, args.strangers)
    write_results("growth", result, report(result), out_of(args))


if __name__ == "__main__":
    main()
