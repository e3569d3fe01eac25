"""Blob fetch benchmark: a worker's batch of 16 photos from s3:// against file://.

    make bench-blobs    # = .venv/bin/python -m benchmarks.blob_fetch, ~2 min on 2 cores
    .venv/bin/python -m benchmarks.blob_fetch --smoke    # seconds: 16 objects a size, 1 batch

The worker fetches each batch's photos with ``BlobStore.fetch_many`` on ``fetch_concurrency``
threads before decoding them; this measures that call itself, at concurrency 1, 4 and 16, for
photo-sized objects (256 KiB and 2 MiB of random bytes) stored twice: under a file:// blob root
on local disk (put with ``BlobStore.put``) and in a bucket of moto's S3 server on 127.0.0.1
(obstore over HTTP, signed with the standard credential chain, as in production). Every fetch
is given its content_sha256, so the checksum is part of the cost, as in the worker.

Per cell: batch wall time (median and p95 over every batch of every repeat), photos/s and the
client process's CPU ms per photo (time.process_time: every thread, obstore's Rust runtime
included), each the median of the repeats; the repeats take turns across cells so drift on a
shared machine hits every cell alike. For s3:// the moto server's CPU per GET (from
/proc/<pid>/stat) is shown too.

A third store, ``s3:// +20 ms``, is the same bucket behind a proxy that holds every request
20 ms (an assumed in-region first-byte latency): on loopback a GET costs moto's CPU and nothing
else, while a real store's round trip is what concurrency saves.

Caveats: moto is single-process Python and is the ceiling here, not S3 (1000 / its CPU ms per
GET is about what one core of it can serve), and on a small machine it shares the cores with
the client, so s3:// wall times say little about a real store's; the client CPU per photo is
the number that carries over. file:// reads come from the page cache (the files were just
written), not from a cold disk.

Writes benchmarks/results/blob_fetch.json and blob_fetch.md (not in --smoke), and prints the
table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import out_of, output_args, write_results
from benchmarks.stats import percentile
from streams.blobs.store import Blob, BlobStore
from streams.config import Settings, load_settings
from tests.blobs.proxy import FreezingProxy
from tests.blobs.s3server import LocalS3

BUCKET = "photos"
BATCH = 16
OBJECTS = 64  # per size: 4 distinct batches, cycled
WARM = 2  # batches per cell before the measured ones
SIZES = {"256 KiB": 256 * 1024, "2 MiB": 2 * 1024 * 1024}
CONCURRENCY = (1, 4, 16)
# assumed, not measured: about the first-byte latency of a GET from a store in the same region
DISTANT_MS = 20
DISTANT = f"s3:// +{DISTANT_MS} ms"
Wanted = list[tuple[Blob, str | None]]


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settings_for(root: Path, endpoint: str, concurrency: int) -> Settings:
    base = load_settings()
    blobs = base.blobs.model_copy(
        update={
            "root": root,
            "fetch_concurrency": concurrency,
            "s3_endpoint": endpoint,
            "s3_buckets": [BUCKET],
            "s3_region": "us-east-1",
        }
    )
    return base.model_copy(update={"blobs": blobs})


def seed(s3: LocalS3, files: BlobStore, count: int) -> dict[tuple[str, str], Wanted]:
    """(store, size label) -> the ``count`` objects of that size as fetch_many wants them."""
    client = s3.client()
    s3.create_bucket(BUCKET)
    rng = random.Random(42)
    objects: dict[tuple[str, str], Wanted] = {}
    for label, size in SIZES.items():
        objects["file://", label], objects["s3://", label] = [], []
        for i in range(count):
            data, name = rng.randbytes(size), f"{size}-{i:03d}"
            sha = hashlib.sha256(data).hexdigest()
            key = f"bench/{name}.jpg"
            client.put_object(Bucket=BUCKET, Key=key, Body=data)
            objects["s3://", label].append(({"uri": f"s3://{BUCKET}/{key}"}, sha))
            objects["file://", label].append(({"uri": files.put("bench", name, data, ".jpg")}, sha))
    return objects


def one_repeat(
    blobs: BlobStore, objects: Wanted, batches: int, pid: int
) -> tuple[list[float], float, float]:
    """(batch wall times, client CPU s, server CPU s) of ``batches`` batches."""
    walls: list[float] = []
    client_cpu = server_cpu = 0.0
    for b in range(batches):
        start = (b * BATCH) % len(objects)
        batch = objects[start : start + BATCH]
        server_before, cpu_before = cpu_of(pid), time.process_time()
        started = time.perf_counter()
        results = blobs.fetch_many(batch)
        walls.append(time.perf_counter() - started)
        client_cpu += time.process_time() - cpu_before
        server_cpu += cpu_of(pid) - server_before
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} fetches failed, the first: {failed[0]!r}")
    return walls, client_cpu, server_cpu


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def run(batches: int, repeats: int, count: int = OBJECTS, warm: int = WARM) -> dict[str, Any]:
    """Every cell's ``batches`` x ``repeats`` over ``count`` objects a size, after ``warm``
    batches each."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto takes any
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    with tempfile.TemporaryDirectory(prefix="darkroom-blob-bench-") as tmp:
        s3 = LocalS3(Path(tmp) / "moto.log").start()
        assert s3.process is not None
        pid = s3.process.pid
        # the same bucket again, every request held DISTANT_MS by a proxy (in this process:
        # its threads' CPU counts as the client's in that row)
        distant = FreezingProxy(s3.port, delay_s=DISTANT_MS / 1000)
        stores: dict[tuple[str, int], BlobStore] = {}
        try:
            for n in CONCURRENCY:
                for store, endpoint in (("s3://", s3.endpoint), (DISTANT, distant.endpoint)):
                    settings = settings_for(Path(tmp) / "blobs", endpoint, n)
                    stores[store, n] = BlobStore.from_settings(settings)
                stores["file://", n] = stores["s3://", n]
            objects = seed(s3, stores["file://", 1], count)
            for label in SIZES:
                objects[DISTANT, label] = objects["s3://", label]
            cells = [(where, n) for where in objects for n in CONCURRENCY]
            for (store, size), n in cells:  # warm: threads, connections, code paths
                one_repeat(stores[store, n], objects[store, size], warm, pid)
            measured: dict[Any, list[tuple[list[float], float, float]]] = {c: [] for c in cells}
            for _ in range(repeats):
                for (store, size), n in cells:
                    measured[(store, size), n].append(
                        one_repeat(stores[store, n], objects[store, size], batches, pid)
                    )
        finally:
            for blobs in stores.values():
                blobs.close()
            distant.close()
            s3.stop()
    rows = []
    for ((store, size), n), runs in measured.items():
        photos = batches * BATCH
        rows.append(
            {
                "store": store,
                "size": size,
                "concurrency": n,
                "photos": photos * repeats,
                "batch_wall_s": {
                    "median": median([w for walls, _, _ in runs for w in walls]),
                    "p95": percentile([w for walls, _, _ in runs for w in walls], 95),
                },
                "photos_per_s": median([photos / sum(walls) for walls, _, _ in runs]),
                "client_cpu_ms_per_photo": median([1000 * cpu / photos for _, cpu, _ in runs]),
                "server_cpu_ms_per_get": (
                    median([1000 * cpu / photos for _, _, cpu in runs])
                    if store != "file://"
                    else None
                ),
            }
        )
    for row in rows:
        base = next(
            r
            for r in rows
            if r["store"] == row["store"] and r["size"] == row["size"] and r["concurrency"] == 1
        )
        row["vs_concurrency_1"] = row["photos_per_s"] / base["photos_per_s"]
    packages = {name: version(name) for name in ("moto", "obstore", "boto3")}
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d"),
            "packages": packages,
        },
        "batch": BATCH,
        "batches": batches,
        "repeats": repeats,
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in machine["packages"].items())
    lines = [
        f"Measured {machine['date']} on {machine['cpus']} CPU cores ({packages}); "
        f"`BlobStore.fetch_many` of batches of {report['batch']} photos, checksums verified, "
        f"{report['batches']} batches x {report['repeats']} repeats per cell.",
        "",
        "| store | size | conc. | batch median ms | batch p95 ms | photos/s | vs conc. 1 "
        "| client CPU ms/photo | server CPU ms/GET |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        wall, server = r["batch_wall_s"], r["server_cpu_ms_per_get"]
        lines.append(
            f"| {r['store']} | {r['size']} | {r['concurrency']} | {1000 * wall['median']:.1f} "
            f"| {1000 * wall['p95']:.1f} | {r['photos_per_s']:.0f} | {r['vs_concurrency_1']:.2f}x "
            f"| {r['client_cpu_ms_per_photo']:.2f} | {'-' if server is None else f'{server:.2f}'} |"
        )
    servers = [r["server_cpu_ms_per_get"] for r in report["rows"] if r["store"] == "s3://"]
    lines += [
        "",
        f"- moto spent {min(servers):.1f}-{max(servers):.1f} CPU ms per GET: one core of it "
        f"serves at most ~{1000 / min(servers):.0f} GETs/s, and it shares the machine's cores "
        "with the client, so s3:// throughput here is moto's ceiling, not S3's.",
        "- file:// reads come from the page cache (written just before), not a cold disk.",
        f"- {DISTANT}: the same bucket through a proxy that holds every request {DISTANT_MS} ms "
        "(an assumed in-region first-byte latency); the proxy runs in the client's process, so "
        "its CPU is in that row's client CPU.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 16 per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    output_args(parser, smoke=f"{BATCH} objects a size, 1 batch x 1 repeat per cell, no warm-up")
    args = parser.parse_args(argv)
    if args.smoke:  # every store, size and concurrency once; the numbers mean nothing
        report = run(batches=1, repeats=1, count=BATCH, warm=0)
    else:
        report = run(args.batches, args.repeats)
    write_results("blob_fetch", report, markdown(report), out_of(args))


if __name__ == "__main__":
    main()
