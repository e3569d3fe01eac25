"""Capacity inputs: measured bytes per photo on every topic, changelog, RocksDB and blob store.

    .venv/bin/python -m benchmarks.capacity           # ~2 min on 2 cores; --photos/--users to vary
    .venv/bin/python -m benchmarks.capacity --smoke   # ~30 s: 8 photos of 2 users, printed only

The README's capacity model (1 billion uploads/day) multiplies these per-photo sizes by the rate.
One private embedded broker and one worker (batch 16, wait 0.2 s, as benchmarks/e2e.py); the e2e
photo set is published by file:// reference, consecutive photos to one user (no user uploads the
same bytes twice) but sent round-robin over users, so a batch holds many users' photos as at
scale (user-keyed tables are then written about once per photo, not once per batch). After every
outcome the worker stops and each topic is read from the start: key+value bytes per record
(mean/median/p95), records and bytes per photo and, for each ``<app_id>-<table>-changelog``, what
compaction leaves (latest record per key); also the photo files, the worker's RocksDB folder,
and lz4 ratios of the values (each alone; batched with the same user's other photos).

Caveats: the set is 8 distinct images (0.3, 3 and 12 MP JPEGs) cycled, so content-derived values
vary less than real photos'. The embedded broker (tansu) keeps records uncompressed, one per
batch: sizes are key+value bytes without Kafka framing (~70 B a batch) or replication; the
``standard`` profile's producers (Apache Kafka) use lz4, hence the ratios. Users here have few
photos: user_stats grows with distinct labels; the lists (dup_index, tag_photos, person_photos)
are one key per photo, so what a user's library costs is its photos times their bytes (how the
bytes per upload do not grow with the library: benchmarks/growth.py). RocksDB has fixed overhead
per database (one per table and partition): per photo is the growth from an empty worker.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cramjam

from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.e2e import (
    Photos,
    _interrupt,
    publisher_for,
    scenario_settings,
    wait_outcomes,
    write_as_users,
)
from benchmarks.engine import machine
from benchmarks.stats import percentile
from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import probe
from streams.kafka.topics import ensure_topics, project_topics
from streams.logs import configure_logging
from streams.publish import default_user
from streams.tail import scan
from streams.worker.supervisor import WorkerProcess

Record = tuple[bytes, bytes | None, str | None]  # key, value (None: tombstone), owning user
SMOKE = (8, 2)  # photos, users of a smoke run: one batch of the worker (16)


def publish_interleaved(settings: Settings, photos: Photos, folder: Path, users: int) -> int:
    """Write the photos as files of ``users`` users (consecutive photos to one user, as
    e2e.publish does) and publish them round-robin over the users; returns how many."""
    files = write_as_users(photos, folder, users, lambda u: f"user-{u:07d}")
    by_user: dict[str, list[Any]] = defaultdict(list)
    for file in files:
        by_user[default_user(file.path)].append(file)
    queues = list(by_user.values())
    order = [q[k] for k in range(max(map(len, queues))) for q in queues if k < len(q)]
    publisher = publisher_for(settings)
    report = publisher.publish(order)
    assert not report.failed, report.failed
    return len(report.delivered)


def disk(path: Path) -> dict[str, int]:
    """Bytes of the files under ``path``: apparent, allocated, and RocksDB data (.sst, WAL)."""
    stats = [(p, p.stat()) for p in path.rglob("*") if p.is_file()]
    data = [s.st_size for p, s in stats if p.suffix in (".sst", ".log") and p.stem.isdigit()]
    return {
        "files": len(stats),
        "apparent": sum(s.st_size for _, s in stats),
        "allocated": sum(s.st_blocks * 512 for _, s in stats),
        "sst_wal": sum(data),
    }


def read(settings: Settings, topic: str, owners: dict[str, str]) -> list[Record]:
    """Every record of ``topic`` with its user, when known; events add photo -> user to owners."""
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    records: list[Record] = []
    for m in scan(settings, codec, topic):
        owner = None
        record = m.event.record if m.event is not None else {}
        if record.get("photo_id") and record.get("user_id"):
            owner = owners.setdefault(record["photo_id"], record["user_id"])
        elif m.key and m.key.startswith(b'"'):  # a table key (JSON): a photo id or a user id
            owner = owners.get(json.loads(m.key))
        records.append((m.key or b"", m.raw or None, owner))
    return records


def lz4_ratio(values: Sequence[bytes]) -> float | None:
    """Raw bytes / lz4-frame bytes of each value compressed alone."""
    packed = sum(len(cramjam.lz4.compress(v)) for v in values)
    return sum(map(len, values)) / packed if packed else None


def summarise(records: list[Record], photos: int, table: str | None) -> dict[str, Any]:
    """Sizes per record and per photo (and after compaction, for a table's changelog)."""
    sizes = sorted(len(k) + len(v or b"") for k, v, _ in records) or [0]
    groups: dict[str, list[bytes]] = defaultdict(list)  # photo-keyed: one user's photos
    for _, v, owner in records:
        if v and owner is not None:
            groups[owner].append(v)
    row: dict[str, Any] = {
        "records": len(records),
        "records_per_photo": len(records) / photos,
        "bytes_mean": statistics.fmean(sizes),
        "bytes_median": statistics.median(sizes),
        "bytes_p95": percentile(sizes, 95),
        "key_bytes_mean": statistics.fmean(len(k) for k, _, _ in records) if records else 0.0,
        "bytes_total": sum(sizes),
        "bytes_per_photo": sum(sizes) / photos,
        "lz4_ratio_alone": lz4_ratio([v for _, v, _ in records if v]),
        "lz4_ratio_batched": lz4_ratio([b"".join(g) for g in groups.values()]),
    }
    if table is not None:
        latest = {k: v for k, v, _ in records}  # compaction keeps the last record per key
        live = {k: v for k, v in latest.items() if v is not None}
        kept = sum(len(k) + len(v) for k, v in live.items())
        row.update(keys=len(live), compacted_bytes=kept, compacted_per_photo=kept / photos)
        if table == "dup_index" and live:  # one key per photo: key and value
            row["bytes_per_index_entry"] = kept / len(live)
    return row


def measure(photos: Photos, users: int, folder: Path) -> dict[str, Any]:
    """Broker, one worker, publish, wait, stop; then read and size everything."""
    base = private_broker_settings(production_settings(), folder / "broker")
    blobs = folder / "blobs"
    base = base.model_copy(update={"blobs": base.blobs.model_copy(update={"root": blobs})})
    broker = EmbeddedBroker(base)
    broker.start()
    try:
        settings = scenario_settings(base, 16, 0.2)
        ensure_topics(settings, project_topics(settings))
        worker = WorkerProcess(settings, folder, "worker")
        data_dir = worker.settings.worker.data_dir
        try:
            worker.start().wait_ready(180)
            empty = disk(data_dir)
            started = time.monotonic()
            sent = publish_interleaved(settings, photos, folder / "photos", users)
            wait_outcomes(settings, sent)
            seconds = time.monotonic() - started
            time.sleep(2.0)  # the last batch's table writes follow its outputs
        finally:
            worker.stop()
        stopped = disk(data_dir)
        t, app_id = settings.topics, settings.worker.app_id
        owners: dict[str, str] = {}
        topics: dict[str, Any] = {
            "photos.uploaded": summarise(read(settings, t.uploaded, owners), sent, None),
            "photos.enriched": summarise(read(settings, t.enriched, owners), sent, None),
            "photos.failed": summarise(read(settings, t.failed, owners), sent, None),
        }
        changelogs = sorted(
            n for n in probe(settings).topics if n.startswith(f"{app_id}-") and "changelog" in n
        )
        for name in changelogs:
            table = name.removeprefix(f"{app_id}-").removesuffix("-changelog")
            topics[f"{table} (changelog)"] = summarise(read(settings, name, owners), sent, table)
    finally:
        broker.stop()
    sizes = [len(data) for _, data in photos]
    growth = {k: (stopped[k] - empty[k]) / sent for k in ("apparent", "allocated", "sst_wal")}
    return {
        "photos": sent,
        "users": users,
        "partitions": settings.topics.partitions,
        "index_max_photos": settings.worker.index_max_photos,
        "seconds_to_enrich": seconds,
        "topics": topics,
        "photo_files": {
            "bytes_mean": statistics.fmean(sizes),
            "bytes_median": statistics.median(sizes),
            "distinct": len({data for _, data in photos}),
            "blob_store_bytes_per_photo": disk(blobs)["apparent"] / sent,
        },
        "rocksdb": {"empty": empty, "stopped": stopped, "per_photo": growth},
    }


def _num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The table the README quotes."""
    files, rocks = report["photo_files"], report["rocksdb"]
    lines = [
        f"Measured {report['machine']['date']}: {report['photos']} photos of "
        f"{report['users']} users, one worker, embedded broker ({report['partitions']} "
        "partitions); record bytes = key + value, uncompressed.",
        "",
        "| topic | records | records/photo | mean B | median B | p95 B | B/photo "
        "| compacted B/photo | lz4 ratio alone / batched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["topics"].items():
        ratios = f"{_num(r['lz4_ratio_alone'], 2)} / {_num(r['lz4_ratio_batched'], 2)}"
        lines.append(
            f"| {name} | {r['records']} | {r['records_per_photo']:.2f} | {_num(r['bytes_mean'])} "
            f"| {_num(r['bytes_median'])} | {_num(r['bytes_p95'])} | {_num(r['bytes_per_photo'])} "
            f"| {_num(r.get('compacted_per_photo'))} | {ratios} |"
        )
    per = rocks["per_photo"]
    lines += [
        "",
        f"Photo files (object store): mean {files['bytes_mean'] / 1e6:.2f} MB, median "
        f"{files['bytes_median'] / 1e6:.2f} MB ({files['distinct']} distinct images); blob "
        f"store {files['blob_store_bytes_per_photo'] / 1e6:.2f} MB per photo.",
        f"RocksDB (worker data dir, after stop): {rocks['stopped']['apparent'] / 1e6:.1f} MB in "
        f"{rocks['stopped']['files']} files, {rocks['empty']['apparent'] / 1e6:.1f} MB of it "
        f"there before any photo; growth per photo {_num(per['apparent'])} B apparent, "
        f"{_num(per['allocated'])} B allocated, {_num(per['sst_wal'])} B in .sst/WAL files.",
    ]
    entry, most = report["topics"]["dup_index (changelog)"], report["index_max_photos"]
    lines.append(
        f"dup_index: {entry['bytes_per_index_entry']:.1f} B per index entry (one key a photo): a "
        f"user at index_max_photos ({most}) holds {entry['bytes_per_index_entry'] * most / 1e3:.0f}"
        " KB of entries in all, and each upload writes its own entry only."
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, write capacity.json and capacity.md, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=128)
    parser.add_argument("--users", type=int, default=16)
    output_args(parser, smoke=f"{SMOKE[0]} photos of {SMOKE[1]} users")
    args = parser.parse_args(argv)
    if args.smoke:
        args.photos, args.users = SMOKE
    configure_logging("WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the broker and worker
    started = time.monotonic()
    photos = photoset.mixed_set(args.photos)
    with tempfile.TemporaryDirectory(prefix="darkroom-capacity-") as tmp:
        report = {"machine": machine(), **measure(photos, args.users, Path(tmp))}
    report["wall_s"] = time.monotonic() - started
    out = out_of(args)
    write_results("capacity", report, markdown(report), out)
    where = f"wrote {out}/capacity.json, capacity.md" if out else "wrote nothing (--smoke)"
    print(f"{where} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
