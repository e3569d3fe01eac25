"""S3 client benchmark: which client the worker should GET photos from object storage with.

    make bench-s3-clients    # = .venv/bin/python -m benchmarks.s3_clients, ~2 min on 2 cores
    .venv/bin/python -m benchmarks.s3_clients --smoke    # seconds: 16 objects a size, 1 batch

Needs moto[server], boto3 and obstore (all in Darkroom's environment). aiobotocore is optional:
its botocore pin conflicts with Darkroom's boto3, so without it its rows are skipped (and the
output says so); measure them in a separate environment that has it.
moto's standalone server runs in a subprocess on 127.0.0.1, holding 256 objects of 64 KiB and
64 of 1 MiB (random bytes). Side by side, each client GETs batches of 16 keys (a worker's batch
of photos) at concurrency 1 (one after another) and 16 (the whole batch at once):

- boto3: one client shared by a ThreadPoolExecutor(16), max_pool_connections=16;
- aiobotocore: one client, asyncio.gather;
- obstore (threads): one S3Store, obstore.get + .bytes() in a ThreadPoolExecutor(16);
- obstore (async): one S3Store, obstore.get_async + .bytes_async() under asyncio.gather.

Per batch: wall time (median, p95 over all batches of all repeats) and GETs/s. The number that
matters most is the client process's CPU seconds per GET (time.process_time, every thread,
the Rust runtime's included): moto is slow Python, so wall time mostly measures the server,
while client CPU is what the worker pays beside decoding and inference. The server's CPU per
GET (from /proc/<pid>/stat) is shown to tell the two apart. Every body is checked against its
sha256 after its batch, outside the timed region.

Writes benchmarks/results/s3_clients.json and s3_clients.md (the table; not in --smoke), and
prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import os
import platform
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import obstore
from botocore.config import Config
from obstore.store import S3Store

from benchmarks import out_of, output_args, write_results
from benchmarks.stats import percentile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "photos"
BATCH = 16
SIZES = {"64 KiB": (64 * 1024, 256), "1 MiB": (1024 * 1024, 64)}  # label -> (bytes, objects)
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"
Fetch = Callable[[list[str], int], list[Any]]  # (keys, concurrency) -> bodies (buffers)
AIOBOTOCORE_MISSING = (
    "aiobotocore not installed: its botocore pin conflicts with boto3 1.44; measured separately"
)
try:  # optional: imported by name, so mypy passes with or without it
    aio_session: Any = importlib.import_module("aiobotocore.session")
    aio_config: Any = importlib.import_module("aiobotocore.config")
except ImportError:
    aio_session = aio_config = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """Yield (endpoint, pid) of a moto server subprocess; stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(endpoint: str, most: int | None = None) -> dict[str, dict[str, str]]:
    """Create the bucket and its objects (``most`` of each size at most): size label ->
    {key: sha256}."""
    s3 = boto3_client(endpoint)
    s3.create_bucket(Bucket=BUCKET)
    rng = random.Random(42)
    objects: dict[str, dict[str, str]] = {}
    for label, (size, count) in SIZES.items():
        objects[label] = {}
        for i in range(count if most is None else min(count, most)):
            key, data = f"{size}/{i:04d}.jpg", rng.randbytes(size)
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            objects[label][key] = hashlib.sha256(data).hexdigest()
    return objects


def boto3_client(endpoint: str, config: Config | None = None) -> S3Client:
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        config=config,
    )
    return client


def threaded(get_one: Callable[[str], Any], pool: ThreadPoolExecutor) -> Fetch:
    def fetch(keys: list[str], concurrency: int) -> list[Any]:
        if concurrency == 1:
            return [get_one(key) for key in keys]
        return list(pool.map(get_one, keys))

    return fetch


def in_loop(
    loop: asyncio.AbstractEventLoop, get_one: Callable[[str], Coroutine[Any, Any, Any]]
) -> Fetch:
    async def batch(keys: list[str], concurrency: int) -> list[Any]:
        if concurrency == 1:
            return [await get_one(key) for key in keys]
        return list(await asyncio.gather(*(get_one(key) for key in keys)))

    return lambda keys, concurrency: loop.run_until_complete(batch(keys, concurrency))


@contextmanager
def clients(endpoint: str) -> Iterator[dict[str, Fetch]]:
    """name -> fetch, each client built once and shared by every batch, as a worker would."""
    pool = ThreadPoolExecutor(BATCH)
    loop = asyncio.new_event_loop()
    s3 = boto3_client(endpoint, Config(max_pool_connections=BATCH))
    aio_ctx: Any = None
    aio: Any = None
    if aio_session is not None:
        aio_ctx = aio_session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            config=aio_config.AioConfig(max_pool_connections=BATCH),
            **CREDENTIALS,
        )
        aio = loop.run_until_complete(aio_ctx.__aenter__())
    store = S3Store(
        BUCKET,
        endpoint=endpoint,
        region=REGION,
        access_key_id=CREDENTIALS["aws_access_key_id"],
        secret_access_key=CREDENTIALS["aws_secret_access_key"],
        client_options={"allow_http": True},
    )

    def boto3_get(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    async def aio_get(key: str) -> bytes:
        response = await aio.get_object(Bucket=BUCKET, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
            return data

    async def obstore_async_get(key: str) -> Any:
        return await (await obstore.get_async(store, key)).bytes_async()

    try:
        fetches = {
            "boto3 (threads)": threaded(boto3_get, pool),
            "aiobotocore (gather)": in_loop(loop, aio_get),
            "obstore (threads)": threaded(lambda key: obstore.get(store, key).bytes(), pool),
            "obstore (async gather)": in_loop(loop, obstore_async_get),
        }
        if aio is None:
            del fetches["aiobotocore (gather)"]
        yield fetches
    finally:
        if aio_ctx is not None:
            loop.run_until_complete(aio_ctx.__aexit__(None, None, None))
        loop.close()
        pool.shutdown()


def measure_cell(
    fetch: Fetch, digests: dict[str, str], concurrency: int, batches: int, repeats: int, pid: int
) -> dict[str, Any]:
    keys = list(digests)
    plan = [keys[(b * BATCH) % len(keys) :][:BATCH] for b in range(batches)]
    fetch(plan[0], concurrency)  # warm: connections opened, code paths loaded
    walls: list[float] = []
    client_cpu = server_cpu = 0.0
    for _ in range(repeats):
        for batch in plan:
            server_before, cpu_before = cpu_of(pid), time.process_time()
            started = time.perf_counter()
            bodies = fetch(batch, concurrency)
            walls.append(time.perf_counter() - started)
            client_cpu += time.process_time() - cpu_before
            server_cpu += cpu_of(pid) - server_before
            for key, body in zip(batch, bodies, strict=True):
                if hashlib.sha256(body).hexdigest() != digests[key]:
                    raise AssertionError(f"wrong bytes for {key}")
    gets = len(walls) * BATCH
    return {
        "concurrency": concurrency,
        "gets": gets,
        "batch_wall_s": {"median": percentile(walls, 50), "p95": percentile(walls, 95)},
        "gets_per_s": gets / sum(walls),
        "client_cpu_ms_per_get": 1000 * client_cpu / gets,
        "server_cpu_ms_per_get": 1000 * server_cpu / gets,
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| size | client | conc. | batch median ms | batch p95 ms | GETs/s "
        "| client CPU ms/GET | server CPU ms/GET |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        wall = r["batch_wall_s"]
        lines.append(
            f"| {r['size']} | {r['client']} | {r['concurrency']} | {1000 * wall['median']:.1f} "
            f"| {1000 * wall['p95']:.1f} | {r['gets_per_s']:.0f} "
            f"| {r['client_cpu_ms_per_get']:.2f} | {r['server_cpu_ms_per_get']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 16 keys per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    output_args(parser, smoke=f"{BATCH} objects a size, 1 batch x 1 repeat per cell")
    args = parser.parse_args(argv)
    most = None
    if args.smoke:  # every client, size and concurrency once; the numbers mean nothing
        most, args.batches, args.repeats = BATCH, 1, 1
    skipped = [] if aio_session is not None else [AIOBOTOCORE_MISSING]
    for line in skipped:
        print(f"{line}: its rows are skipped", flush=True)
    rows: list[dict[str, Any]] = []
    with moto_server() as (endpoint, pid):
        objects = seed(endpoint, most)
        with clients(endpoint) as fetches:
            for size, digests in objects.items():
                for concurrency in (1, BATCH):
                    for name, fetch in fetches.items():
                        cell = measure_cell(
                            fetch, digests, concurrency, args.batches, args.repeats, pid
                        )
                        rows.append({"size": size, "client": name, **cell})
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
            "packages": installed(["moto", "boto3", "botocore", "aiobotocore", "obstore"]),
        },
        "batch": BATCH,
        "batches": args.batches,
        "repeats": args.repeats,
        "skipped": skipped,
        "rows": rows,
    }
    print()
    write_results("s3_clients", report, markdown(report), out_of(args))


def installed(names: Sequence[str]) -> dict[str, str]:
    """name -> version of each of ``names`` that is installed."""
    found = {}
    for name in names:
        with suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def markdown(report: dict[str, Any]) -> str:
    """The table, with what it was measured on and what was skipped."""
    machine = report["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in machine["packages"].items())
    lines = [
        f"Measured {machine['date']} on {machine['cpus']} CPU cores ({packages}); batches of "
        f"{report['batch']} GETs, {report['batches']} batches x {report['repeats']} repeats "
        "per cell, against moto's server on 127.0.0.1.",
        "",
        table(report["rows"]),
    ]
    lines += ["", *(f"- {line}." for line in report["skipped"])] if report["skipped"] else []
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
