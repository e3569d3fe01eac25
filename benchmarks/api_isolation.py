"""API isolation benchmark: enrichment throughput with and without 200 concurrent API readers.

    .venv/bin/python -m benchmarks.api_isolation            # ~4 min on 2 cores
    .venv/bin/python -m benchmarks.api_isolation --smoke    # 40 s: that it runs (8 photos,
                                                            # 20 readers: the ratio means little)

One worker (its own process, a token file, the web API on 127.0.0.1) on a private embedded
broker. A library of photos is enriched first, so the readers' queries find real data. Then the
same set of photos is published and enriched alone and beside the readers in turn, starting and
ending alone (``--rounds`` times beside them); the ratio is the median throughput beside them
over the median alone (goal >= 0.8), so a machine that slows down or speeds up meanwhile
moves both.
Each reader asks, one request after another, for the similar photos of a library photo or a
library user's duplicates, with the token, and waits as a 429's Retry-After says. Readers run
in a process of their own (asyncio, aiohttp), on the same 2 cores as the worker: their own CPU
time is reported beside the result. ``--unlimited`` runs the worker without the API's limits
(what it had before: every request in hand at once, query work at 100% of its thread).

Writes benchmarks/results/api_isolation.json and api_isolation.md (``--unlimited``:
api_isolation_unlimited.*; nothing in --smoke, which exits 0 whatever the ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import resource
import secrets
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.e2e import publish, publisher_for, run_stats, scenario_settings, wait_outcomes
from benchmarks.engine import machine
from benchmarks.stats import percentile
from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings
from streams.kafka.topics import ensure_topics, project_topics
from streams.logs import configure_logging
from streams.publish import collect
from streams.worker.supervisor import WorkerProcess

GOAL = 0.8
LIBRARY_USERS = 4


def library(settings: Settings, folder: Path, photos: list[tuple[str, bytes]]) -> list[str]:
    """Enrich ``photos`` as LIBRARY_USERS users lib-u0..; the query paths the readers ask."""
    per_user = -(-len(photos) // LIBRARY_USERS)
    for i, (name, data) in enumerate(photos):
        path = folder / "library" / f"lib-u{i // per_user}" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    files, problems = collect([str(folder / "library")])
    assert not problems, problems
    delivered = publisher_for(settings).publish(files).delivered
    wait_outcomes(settings, len(delivered))
    paths = [f"/users/{d.user_id}/photos/{d.photo_id}/similar?k=10" for d in delivered]
    return paths + [f"/users/lib-u{u}/duplicates" for u in range(LIBRARY_USERS)] * 4


async def _ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
) -> tuple[int, float]:
    """One GET on a kept-alive connection: (status, Retry-After or 0)."""
    writer.write(head)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    await reader.readexactly(int(fields.get("content-length", 0)))
    return int(lines[0].split()[1]), float(fields.get("retry-after", 0))


async def _readers(
    url: str, token: str, paths: list[str], count: int, stop_at: float, out: Any, stop: Any
) -> None:
    """``count`` readers, each on its own kept-alive connection. A few lines of HTTP/1.1
    instead of an HTTP client library: the readers share the worker's 2 cores here (remote
    clients would not), and aiohttp's client cost them 3 times the CPU."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    host, port = url.removeprefix("http://").split(":")

    async def one(seed: int) -> None:
        pick = random.Random(seed)
        connection = None
        while not stop.is_set() and time.time() < stop_at:
            path = pick.choice(paths)
            head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
            started = time.perf_counter()
            try:
                connection = connection or await asyncio.open_connection(host, int(port))
                status, retry_s = await asyncio.wait_for(_ask(*connection, head.encode()), 30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                statuses[0] += 1
                connection = None  # closed by the worker (or broken): a new one next time
                await asyncio.sleep(1.0)
                continue
            statuses[status] += 1
            if status == 200:
                latencies.append(time.perf_counter() - started)
            elif status == 429:
                await asyncio.sleep(retry_s or 1.0)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "statuses": dict(statuses),
            "latency_s": {str(q): percentile(sorted(latencies), q) for q in (50, 99)}
            if latencies
            else {},
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "seconds": seconds,
        }
    )


def _reader_process(*args: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    asyncio.run(_readers(*args))


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    """What the readers saw: answers by status, their own CPU, the last run's 200s' latency."""

    statuses: Counter[int] = field(default_factory=Counter)
    cpu_s: float = 0.0
    latency_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # they were asking


@contextlib.contextmanager
def reading(
    url: str, token: str, paths: list[str], args: argparse.Namespace, tally: Tally, on: bool
) -> Iterator[None]:
    """The readers, in a process of their own, while inside (nothing when not ``on``)."""
    if not on:
        yield
        return
    context = multiprocessing.get_context("spawn")
    out, stop = context.Queue(), context.Event()
    stop_at = time.time() + args.max_seconds
    process = context.Process(
        target=_reader_process, args=(url, token, paths, args.readers, stop_at, out, stop)
    )
    process.start()
    try:
        time.sleep(2.0)  # connected and asking before anything is measured
        yield
    finally:
        stop.set()
        answers = out.get(timeout=60)
        process.join(30)
    tally.statuses.update(answers["statuses"])
    tally.cpu_s += answers["cpu_s"]
    tally.latency_s = answers["latency_s"]
    tally.seconds += answers["seconds"]


def enrich_once(
    settings: Settings, photos: list[tuple[str, bytes]], folder: Path, prefix: str, total: int
) -> tuple[float, int]:
    """Publish the set as users <prefix>-u..; (photos/s, outcomes so far)."""
    total += publish(settings, photos, folder, prefix)
    wait_outcomes(settings, total, timeout_s=900)
    return run_stats(settings, f"{prefix}-")["photos_per_s"], total


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    photos = photoset.mixed_set(args.photos)
    base = private_broker_settings(production_settings(), folder / "broker")
    base = base.model_copy(
        update={"blobs": base.blobs.model_copy(update={"root": folder / "blobs"})}
    )
    token_file = folder / "api-tokens"
    token = secrets.token_urlsafe(32)
    token_file.write_text(token + "\n")
    worker_settings: dict[str, Any] = {"api_token_file": token_file}
    if args.unlimited:
        worker_settings |= {"api_max_requests": 100_000, "api_query_share": 1.0}
    elif args.share is not None:
        worker_settings["api_query_share"] = args.share
    broker = EmbeddedBroker(base)
    broker.start()
    try:
        settings = scenario_settings(base, 16, 0.2)
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update=worker_settings)}
        )
        ensure_topics(settings, project_topics(settings))
        worker = WorkerProcess(settings, folder, "worker")
        try:
            worker.start().wait_ready(180)
            paths = library(settings, folder, photoset.mixed_set(args.library))
            total = args.library
            rates: dict[str, list[float]] = {"alone": [], "beside": []}
            cpu: dict[str, list[float]] = {"alone": [], "beside": []}  # worker's, per photo
            assert worker.process is not None
            pid = worker.process.pid
            readers = Tally()
            phases = ["alone", *(["beside", "alone"] * args.rounds)]
            for phase in phases[:-1] if args.smoke else phases:
                print(f"{phase}: {len(photos)} photos", flush=True)
                cpu_before = process_cpu_s(pid)
                with reading(worker.url, token, paths, args, readers, phase == "beside"):
                    rate, total = enrich_once(settings, photos, folder, f"{phase}{total}", total)
                rates[phase].append(rate)
                cpu[phase].append((process_cpu_s(pid) - cpu_before) / len(photos))
            # the readers alone: what answering them costs the worker
            with reading(worker.url, token, paths, args, only := Tally(), True):
                before, started = process_cpu_s(pid), time.monotonic()
                time.sleep(args.idle_seconds)
                cores = (process_cpu_s(pid) - before) / (time.monotonic() - started)
            readers_only = {
                "worker_cores": cores,
                "answers_per_s": {k: n / only.seconds for k, n in only.statuses.items()},
            }
            log_text = worker.log.read_text(errors="replace")
        finally:
            worker.stop()
    finally:
        broker.stop()
    alone = statistics.median(rates["alone"])
    return {
        "machine": machine(),
        "photos": len(photos),
        "library": args.library,
        "readers": args.readers,
        "unlimited": args.unlimited,
        "share": worker.settings.worker.api_query_share,
        "photos_per_s": rates,
        "worker_cpu_s_per_photo": cpu,
        "ratio": statistics.median(rates["beside"]) / alone,
        "reader_results": {
            "statuses": dict(readers.statuses),
            "cpu_s": readers.cpu_s,
            "latency_s": readers.latency_s,
            "seconds": readers.seconds,
        },
        "readers_only": readers_only,
        "token_in_worker_log": token in log_text,
    }


def markdown(report: dict[str, Any]) -> str:
    rates = report["photos_per_s"]
    answers = report["reader_results"]
    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(answers["statuses"].items()))
    latency = answers["latency_s"]
    served = (
        f"p50 {latency['50'] * 1000:.0f} ms, p99 {latency['99'] * 1000:.0f} ms" if latency else "-"
    )
    only = ", ".join(
        f"{n:.0f} x {s}" for s, n in sorted(report["readers_only"]["answers_per_s"].items())
    )
    limits = (
        "no API limits (--unlimited)"
        if report["unlimited"]
        else f"the API's limits (query share {report['share']:g})"
    )
    lines = [
        f"Measured {report['machine']['date']} on {report['machine']['cpus']} CPU cores; "
        f"{report['photos']} photos a phase (1/4 12 MP, 1/4 3 MP, 1/2 0.3 MP JPEGs), "
        f"{report['readers']} readers, {limits}.",
        "",
        "| phase | photos/s | worker CPU per photo |",
        "|---|---|---|",
        *(
            f"| {name} | {rate:.2f} | {cpu_s:.2f} s |"
            for phase, name in (
                ("alone", "alone"),
                ("beside", f"beside {report['readers']} readers"),
            )
            for rate, cpu_s in zip(
                rates[phase], report["worker_cpu_s_per_photo"][phase], strict=True
            )
        ),
        "",
        f"- ratio (median beside / median alone): **{report['ratio']:.2f}** (goal >= {GOAL})",
        f"- readers' answers (all rounds): {statuses}; 200s in {served} (last round); the "
        "readers' processes used "
        f"{answers['cpu_s']:.1f} s of CPU",
        f"- the readers alone ({report['readers_only']['worker_cores']:.2f} cores of the "
        f"worker): {only} answers a second",
        f"- the token in the worker's log: {'YES' if report['token_in_worker_log'] else 'no'}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64, help="photos a phase (default 64)")
    parser.add_argument("--library", type=int, default=32, help="photos the readers query")
    parser.add_argument("--readers", type=int, default=200, help="concurrent readers")
    parser.add_argument("--rounds", type=int, default=2, help="phases beside the readers")
    parser.add_argument("--max-seconds", type=float, default=600, help="readers stop after this")
    parser.add_argument(
        "--idle-seconds", type=float, default=10, help="readers alone, to measure their cost"
    )
    parser.add_argument("--share", type=float, help="DARKROOM_WORKER_API_QUERY_SHARE")
    parser.add_argument("--unlimited", action="store_true", help="the worker without API limits")
    output_args(parser, smoke="8 photos, 20 readers, 2 phases")
    args = parser.parse_args(argv)
    if args.smoke:
        args.photos, args.library, args.readers, args.max_seconds = 8, 8, 20, 60
        args.rounds, args.idle_seconds = 1, 3
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory(prefix="darkroom-api-") as tmp:
        report = run(args, Path(tmp))
    name = "api_isolation_unlimited" if args.unlimited else "api_isolation"
    write_results(name, report, markdown(report), out_of(args))
    raise SystemExit(0 if args.smoke or report["ratio"] >= GOAL else 1)


if __name__ == "__main__":
    main()
