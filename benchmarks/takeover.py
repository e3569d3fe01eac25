"""Takeover with and without Faust standby replicas: kill -9 one of two workers, time the rest.

    .venv/bin/python -m benchmarks.takeover [--runs 3] [--records 40000] [--engine kafka]
    .venv/bin/python -m benchmarks.takeover --smoke   # ~40 s: tansu, 1 run with 1 standby,
                                                      # 1500 rows, 8 + 8 photos, printed only

Two workers on a private broker (Apache Kafka, one node, by default) split the 4 partitions
and enrich a small library (real table rows). Then the changelog of the ``embeddings`` table
gets ``--records`` more rows (3.4 KB each, the size of a real 1280-d float16 embedding) on each
partition the victim owns, as a long-lived worker's tables would hold; the other worker keeps
them up to date only when it holds standby replicas (``DARKROOM_WORKER_STANDBY_REPLICAS``).
With standbys, the run waits until the survivor's standby copies are within one standby batch
(1000 records: Faust applies them in batches) of the last record (a read-only look at its
RocksDB), so the takeover starts from caught-up replicas.

At time 0 the victim is killed with SIGKILL and 16 probe uploads (8 new users) are published.
Measured from the kill: when the survivor's /healthz says ok with all 4 partitions (the group
noticed the death: the session timeout, 10 s on Kafka's profile; the rebalance; every table
partition recovered), and when the probes on the victim's partitions have outputs (first and
last). Each configuration runs ``--runs`` times, alternating, on fresh topics and groups. The
survivor's CPU time over the same window after the filling (``--cpu-window``) says what the
copies cost it.

Writes benchmarks/results/takeover.json and takeover.md (not in --smoke).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.e2e import publish, scenario_settings, wait_outcomes
from benchmarks.engine import machine
from streams.broker import private_broker_settings
from streams.broker.factory import local_broker
from streams.config import BrokerEngine, Settings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.kafka.clients import make_consumer, make_producer, watermarks
from streams.kafka.topics import ensure_topics, project_topics
from streams.logs import configure_logging
from streams.tail import scan
from streams.worker import local_state
from streams.worker.local_state import changelog_topic
from streams.worker.supervisor import WorkerProcess

PARTITIONS = {0, 1, 2, 3}
ROW_BYTES = 3416  # a 1280-d float16 embedding, base64, as the embeddings table keeps it


@dataclass(frozen=True)
class Plan:
    """What one run does: filler rows per taken-over partition, library photos (of 8 users),
    probe uploads and their users, and the window of the survivor's CPU from the filling on."""

    records: int = 40_000
    library: int = 32
    probes: int = 16
    probe_users: int = 8
    # longer than the standby copies took to catch up (40,000 rows a partition on Kafka)
    cpu_window_s: float = 25.0


# tansu, one standby setting, rows enough that the standby catch-up (within 1000) is a real
# wait, a photo per probe user (most land on the victim's partitions)
SMOKE = Plan(records=1500, library=8, probes=8, probe_users=8, cpu_window_s=5.0)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def wait(check: Any, timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every_s)
    raise TimeoutError(f"no {what} within {timeout_s:g} s")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def owned(worker: WorkerProcess) -> set[int]:
    return set(worker.get("/healthz")[1].get("partitions", []))


def fill_changelog(settings: Settings, partitions: set[int], records: int) -> dict[int, int]:
    """``records`` embedding-sized rows on each of ``partitions`` of the embeddings changelog;
    the last offset of each partition."""
    topic = changelog_topic(settings.worker.app_id, "embeddings")
    producer = make_producer(settings, **{"linger.ms": 50, "batch.size": 1 << 20})
    value = json.dumps(base64.b64encode(os.urandom(ROW_BYTES * 3 // 4)).decode()).encode()
    for partition in sorted(partitions):
        for i in range(records):
            key = json.dumps(f"filler-{partition}/{i:08d}").encode()
            while True:
                try:
                    producer.produce(topic, key=key, value=value, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
    assert producer.flush(120) == 0
    consumer = make_consumer(settings)
    try:
        return {p: watermarks(consumer, TopicPartition(topic, p), 10.0)[1] - 1 for p in partitions}
    finally:
        consumer.close()


def standby_caught_up(worker: WorkerProcess, last: dict[int, int]) -> bool:
    tabledir = worker.settings.worker.data_dir / "v1" / "tables"
    try:
        held = local_state.persisted_offsets(tabledir)
    except Exception:  # a folder being written: look again
        return False
    # Faust applies a standby's records in batches of the table's standby_buffer_size (1000)
    return all(held.get(("embeddings", p), -1) >= offset - 1000 for p, offset in last.items())


class Health(threading.Thread):
    """Polls the survivor's /healthz; notes when it first says ok with every partition."""

    def __init__(self, worker: WorkerProcess, since: float) -> None:
        super().__init__(daemon=True)
        self.worker, self.since = worker, since
        self.all_owned_s: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.all_owned_s is None:
            status, body = self.worker.get("/healthz")
            if status == 200 and set(body.get("partitions", [])) == PARTITIONS:
                self.all_owned_s = time.time() - self.since
            time.sleep(0.1)


def partitions_of_users(settings: Settings, codec: SingleObjectCodec) -> dict[str, int]:
    return {
        str(m.event.record["user_id"]): m.partition
        for m in scan(settings, codec, settings.topics.uploaded)
        if m.event is not None
    }


def run_once(base: Settings, folder: Path, standby: int, plan: Plan) -> dict[str, Any]:
    settings = scenario_settings(base, 16, 0.2)
    settings = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"standby_replicas": standby})}
    )
    ensure_topics(settings, project_topics(settings))
    tag = settings.worker.app_id
    victim = WorkerProcess(settings, folder / tag, "victim")
    survivor = WorkerProcess(settings, folder / tag, "survivor")
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    try:
        victim.start()
        survivor.start()
        victim.wait_ready(180)
        survivor.wait_ready(180)

        def split() -> tuple[set[int], set[int]] | None:
            a, b = owned(victim), owned(survivor)
            return (a, b) if a and b and not a & b and a | b == PARTITIONS else None

        victims, _ = wait(split, 120, "split of the partitions")
        library = publish(settings, photoset.mixed_set(plan.library), folder / tag, "lib", users=8)
        wait_outcomes(settings, library, timeout_s=300)
        assert survivor.process is not None
        cpu_before, filled_at = process_cpu_s(survivor.process.pid), time.monotonic()
        last = fill_changelog(settings, victims, plan.records) if plan.records else {}
        fill_s = time.monotonic() - filled_at
        caught_up_s = None
        if standby and last:
            wait(lambda: standby_caught_up(survivor, last), 300, "standby copies", every_s=1.0)
            caught_up_s = time.monotonic() - filled_at
        # the same window for both: what keeping the copies up to date cost the survivor
        time.sleep(max(2.0, filled_at + plan.cpu_window_s - time.monotonic()))
        window_s = time.monotonic() - filled_at
        survivor_cpu_s = process_cpu_s(survivor.process.pid) - cpu_before

        killed_at = time.time()
        victim.kill()
        health = Health(survivor, killed_at)
        health.start()
        probes = publish(
            settings, photoset.mixed_set(plan.probes), folder / tag, "probe", plan.probe_users
        )
        wait_outcomes(settings, library + probes, timeout_s=300)
        health.join(60)
        health.stop.set()
        where = partitions_of_users(settings, codec)
        out = [
            m.timestamp_ms / 1000 - killed_at
            for m in scan(settings, codec, settings.topics.enriched)
            if m.event is not None
            and m.timestamp_ms is not None
            and str(m.event.record["user_id"]).startswith("probe-")
            and where[str(m.event.record["user_id"])] in victims
        ]
        log_text = survivor.log.read_text(errors="replace")
        return {
            "standby_replicas": standby,
            "victim_partitions": sorted(victims),
            "filler_records_per_partition": plan.records,
            "fill_s": round(fill_s, 1),
            "standby_caught_up_s": None if caught_up_s is None else round(caught_up_s, 1),
            "survivor_cpu_s": round(survivor_cpu_s, 1),
            "cpu_window_s": round(window_s, 1),
            "all_owned_s": None if health.all_owned_s is None else round(health.all_owned_s, 2),
            "first_output_s": round(min(out), 2) if out else None,
            "last_output_s": round(max(out), 2) if out else None,
            "probes_on_victim_partitions": len(out),
            "survivor_lock_retries": log_text.count("is locked"),
        }
    finally:
        victim.kill()
        survivor.stop()


def summary(runs: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return {"median": None, "low": None, "high": None}
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Takeover after kill -9, {report['engine']} ({report['machine']['cpus']} CPUs)",
        "",
        f"{report['records']} filler rows of {ROW_BYTES} bytes on each of the victim's "
        "embeddings changelog partitions; seconds from the kill (median, low-high of "
        f"{report['runs']} run{'s' if report['runs'] != 1 else ''}):",
        "",
        "| standby replicas | survivor ok with every partition | first output of a probe "
        "on a taken-over partition | last such output |",
        "|---|---|---|---|",
    ]
    for standby, figures in report["summary"].items():
        cells = [
            f"{f['median']:.1f} ({f['low']:.1f}-{f['high']:.1f})"
            if f["median"] is not None
            else "-"
            for f in (figures["all_owned_s"], figures["first_output_s"], figures["last_output_s"])
        ]
        lines.append(f"| {standby} | " + " | ".join(cells) + " |")
    cpu = {s: f["survivor_cpu_s"]["median"] for s, f in report["summary"].items()}
    lines += [
        "",
        f"The survivor's CPU in the {report['plan']['cpu_window_s']:g} s from the filling on "
        "(median): "
        + ", ".join(f"{c:.1f} s with {s} standby replicas" for s, c in cpu.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration")
    parser.add_argument(
        "--records", type=int, default=Plan.records, help="filler rows per taken-over partition"
    )
    parser.add_argument("--engine", choices=["kafka", "embedded"], default="kafka")
    parser.add_argument(
        "--cpu-window",
        type=float,
        default=Plan.cpu_window_s,
        help="seconds of the survivor's CPU measured from the filling on",
    )
    output_args(parser, smoke="tansu, 1 run with 1 standby, 1500 rows, 8 + 8 photos")
    args = parser.parse_args(argv)
    standbys: tuple[int, ...]
    if args.smoke:
        engine: BrokerEngine = "embedded"
        plan, runs, standbys = SMOKE, 1, (1,)
    else:
        engine = args.engine
        plan = Plan(records=args.records, cpu_window_s=args.cpu_window)
        runs, standbys = args.runs, (0, 1)
    configure_logging("WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the broker and workers
    results = measure(engine, plan, runs, standbys)
    keys = (
        "all_owned_s",
        "first_output_s",
        "last_output_s",
        "standby_caught_up_s",
        "survivor_cpu_s",
    )
    report = {
        "engine": engine,
        "machine": machine(),
        "records": plan.records,
        "plan": asdict(plan),
        "runs": runs,
        "results": results,
        "summary": {s: {k: summary(r, k) for k in keys} for s, r in results.items()},
    }
    write_results("takeover", report, markdown(report), out_of(args))


def measure(
    engine: BrokerEngine, plan: Plan, runs: int, standbys: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """``runs`` takeovers with each number of standby replicas, alternating, on one private
    broker: their figures by standby replicas."""
    results: dict[int, list[dict[str, Any]]] = {standby: [] for standby in standbys}
    with tempfile.TemporaryDirectory(prefix="darkroom-takeover-") as tmp:
        folder = Path(tmp)
        base = private_broker_settings(
            production_settings(), folder / "broker", engine=engine, nodes=1
        )
        base = base.model_copy(
            update={"blobs": base.blobs.model_copy(update={"root": folder / "blobs"})}
        )
        broker = local_broker(base, engine)
        broker.start()
        try:
            for run in range(runs):
                for standby in standbys:
                    result = run_once(base, folder / uuid.uuid4().hex[:6], standby, plan)
                    print(f"run {run + 1}: {json.dumps(result)}", flush=True)
                    results[standby].append(result)
        finally:
            broker.stop()
    return results


if __name__ == "__main__":
    main()
