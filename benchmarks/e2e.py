"""End-to-end benchmark: Darkroom vs the naive worker vs the engine alone, one run, one machine.

    .venv/bin/python -m benchmarks.e2e            # ~25 min on 2 cores, with batch and wait sweep
                                                  # (--no-sweep leaves it out); --quick: 16
                                                  # photos, 1 run, no sweep
    .venv/bin/python -m benchmarks.e2e --smoke    # ~1 min: 8 photos through the ceiling, the
                                                  # naive worker and Darkroom's default point on
                                                  # tansu (no fp32, steady or Kafka rows), printed

Every worker runs as its own process against a private embedded broker; the default point runs
again on a private Apache Kafka (1 KRaft node), at least once and exactly once. The model set is
the one models/ serves (the promoted experiments); the "fp32" row serves open_nsfw instead of its
INT8 build (a scratch copy of models/ with the promotion rolled back). Throughput is photos
divided by the span from the first upload's time to the last enriched event's time; latency is
each photo's upload time -> enriched time (both stamped on this machine). Writes
benchmarks/results/e2e.json, e2e.md and e2e.png (not in --smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks import RESULTS as RESULTS  # re-exported: older callers import it from here
from benchmarks import out_of, output_args, photoset, production_settings, write_results
from benchmarks.ceiling import engine_ceiling, engine_round, per_second
from benchmarks.e2e_report import markdown, plot
from benchmarks.engine import machine
from benchmarks.stats import percentile
from streams.blobs import BlobStore
from streams.broker import EmbeddedBroker, local_broker, private_broker_settings
from streams.config import Settings, TopicSettings
from streams.contracts.codec import SingleObjectCodec
from streams.contracts.schemas import SchemaRepository
from streams.engine import Enricher
from streams.errors import DarkroomError
from streams.experiments.promote import promote
from streams.kafka.clients import make_consumer, make_producer, message_count
from streams.kafka.topics import ensure_topics, project_topics
from streams.logs import configure_logging
from streams.models.repository import ModelRepository
from streams.publish import PhotoFile, Publisher, collect
from streams.tail import tail
from streams.worker.supervisor import WorkerProcess

SMOKE_PHOTOS = 8
DEFAULT_POINT = (16, 0.2)  # batch size, max wait (s): the worker's defaults
Photos = list[tuple[str, bytes]]


def scenario_settings(base: Settings, batch: int, wait: float) -> Settings:
    """Fresh topics and consumer group for one configuration."""
    tag = uuid.uuid4().hex[:6]
    topics = TopicSettings(
        uploaded=f"up.{tag}",
        enriched=f"en.{tag}",
        failed=f"fa.{tag}",
        partitions=base.topics.partitions,
    )
    worker = base.worker.model_copy(
        update={"app_id": f"bench-{tag}", "batch_size": batch, "batch_wait_s": wait}
    )
    return base.model_copy(update={"topics": topics, "worker": worker})


def write_as_users(
    photos: Photos, folder: Path, users: int, user_name: Callable[[int], str]
) -> list[PhotoFile]:
    """Write the photos as files of ``users`` users, in folders ``user_name(i)`` (the user a
    publish gives them), and check them. Consecutive photos go to the same user: the set
    cycles through its sources, so dealing them round-robin would give a user byte-identical
    photos, which a worker rightly enriches once (same photo id)."""
    per_user = -(-len(photos) // users)
    for i, (name, data) in enumerate(photos):
        path = folder / user_name(i // per_user) / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    files, problems = collect([str(folder)])
    assert not problems, problems
    return files


def publisher_for(settings: Settings) -> Publisher:
    """A publisher to the uploads topic, by reference under the blob root."""
    return Publisher(
        make_producer(settings),
        SingleObjectCodec(SchemaRepository(settings.paths.schemas)),
        BlobStore.from_settings(settings),
        settings.topics.uploaded,
        settings.blobs.inline_max_bytes,
    )


def publish(
    settings: Settings,
    photos: Photos,
    folder: Path,
    prefix: str,
    users: int | None = None,
    pace_s: float = 0.0,
) -> int:
    """Write the photos as files of users <prefix>-u0.. (by default 8 photos each: the set
    repeats every 8; see ``write_as_users``), publish them; returns how many."""
    users = users or max(1, len(photos) // 8)
    files = write_as_users(photos, folder / prefix, users, lambda u: f"{prefix}-u{u}")
    publisher = publisher_for(settings)
    if not pace_s:
        return len(publisher.publish(files).delivered)
    sent = 0
    started = time.monotonic()
    for i, file in enumerate(files):  # a steady offered rate: one photo every pace_s
        time.sleep(max(0.0, started + i * pace_s - time.monotonic()))
        sent += len(publisher.publish([file]).delivered)
    return sent


def wait_outcomes(settings: Settings, total: int, timeout_s: float = 600.0) -> None:
    """Until ``total`` events are on the enriched + failed topics: one consumer, asked once a
    second (a new client every 0.2 s cost the worker under test CPU it needed)."""
    topics = (settings.topics.enriched, settings.topics.failed)
    consumer = make_consumer(settings)
    try:
        deadline = time.monotonic() + timeout_s
        while sum(message_count(settings, topic, consumer) for topic in topics) < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {total} outcomes after {timeout_s:g} s")
            time.sleep(1.0)
    finally:
        consumer.close()


def run_stats(settings: Settings, users_prefix: str) -> dict[str, Any]:
    """Throughput and latencies of the enriched events whose user starts with the prefix."""
    codec = SingleObjectCodec(SchemaRepository(settings.paths.schemas))
    events = [
        m.event.record
        for m in tail(
            # 5 s: a new consumer on Apache Kafka can take over a second to be handed its first
            # records, and 1 s once read nothing at all there
            settings,
            codec,
            settings.topics.enriched,
            from_beginning=True,
            idle_timeout_s=5.0,
        )
        if m.event is not None and m.event.record["user_id"].startswith(users_prefix)
    ]
    if not events:
        raise RuntimeError(
            f"no enriched event of users {users_prefix}* on {settings.topics.enriched} "
            f"({message_count(settings, settings.topics.failed)} dead letters in all)"
        )
    uploaded = [e["uploaded_at"].timestamp() for e in events]
    done = [e["enriched_at"].timestamp() for e in events]
    latencies = sorted(d - u for d, u in zip(done, uploaded, strict=True))
    return {
        "photos": len(events),
        "photos_per_s": len(events) / (max(done) - min(uploaded)),
        "latencies_s": latencies,
    }


def worker_metrics(worker: WorkerProcess) -> dict[str, Any]:
    """Batch-size distribution and mean seconds per stage from the worker's /metrics."""
    batches: dict[str, float] = {}
    stages: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(worker.metrics()):
        for sample in family.samples:
            if sample.name == "darkroom_batch_size_bucket":
                batches[sample.labels["le"]] = sample.value
            elif family.name == "darkroom_stage_seconds" and sample.name.endswith(
                ("_sum", "_count")
            ):
                stage = stages.setdefault(sample.labels["stage"], {})
                stage[sample.name.rsplit("_", 1)[1]] = sample.value
    means = {s: v["sum"] / v["count"] for s, v in stages.items() if v.get("count")}
    sums = {s: v["sum"] for s, v in stages.items() if v.get("count")}
    return {"batch_size_cumulative": batches, "stage_mean_s": means, "stage_sum_s": sums}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a live process has used (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process's CPU seconds: the publisher and the benchmark's own readers."""
    times = os.times()
    return times.user + times.system


def measure_worker(
    base: Settings,
    photos: Photos,
    folder: Path,
    batch: int,
    wait: float,
    repeats: int,
    module: str | None = None,
    steady_rate: float | None = None,
    timeout_s: float = 600.0,
    after_run: Callable[[], None] = lambda: None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """Start one worker configuration; publish the set ``repeats`` times as fast as possible
    (and once at ``steady_rate`` photos/s if given); collect throughput, latency, metrics.
    ``timeout_s``: the longest wait for one publish's outcomes; ``after_run``: called after
    each timed run (the worker idle meanwhile); ``broker_pid``: whose CPU to count too."""
    settings = scenario_settings(base, batch, wait)
    ensure_topics(settings, project_topics(settings))
    worker = WorkerProcess(settings, folder, f"worker-{settings.worker.app_id}", module=module)
    runs, total = [], 0
    try:
        worker.start().wait_ready(180)
        pid = worker.process.pid if worker.process is not None else None
        for r in range(repeats):
            before = (time.monotonic(), cpu_seconds(pid), cpu_seconds(broker_pid))
            mine = own_cpu_seconds()
            total += publish(settings, photos, folder, f"r{r}")
            _outcomes_of(worker, total, timeout_s)
            span = time.monotonic() - before[0]
            cpus = (os.cpu_count() or 1) * span
            runs.append(run_stats(settings, f"r{r}-"))
            # what shared the machine's CPUs during the run (from the first publish to the
            # last outcome): the worker, the broker, and this process publishing and waiting
            runs[-1]["cpu_share"] = {
                "worker": (cpu_seconds(pid) - before[1]) / cpus,
                "broker": (cpu_seconds(broker_pid) - before[2]) / cpus,
                "publisher": (own_cpu_seconds() - mine) / cpus,
            }
            after_run()
        steady = None
        if steady_rate:
            sent = publish(settings, photos, folder, "steady", pace_s=1.0 / steady_rate)
            _outcomes_of(worker, total + sent, timeout_s)
            steady = run_stats(settings, "steady-")
            steady["offered_photos_per_s"] = steady_rate
        metrics = worker_metrics(worker) if module is None else {}
    finally:
        worker.stop()
    rates = [r["photos_per_s"] for r in runs] or [0.0]
    latencies = [x for r in runs for x in r["latencies_s"]] or [0.0]
    return {
        "batch": batch,
        "wait_s": wait,
        "naive": module is not None,
        "photos_per_s": {
            "median": statistics.median(rates),
            "low": min(rates),
            "high": max(rates),
            "runs": rates,
        },
        "latency_s": {q: percentile(latencies, q) for q in (50, 95, 99)},
        "spans_s": [r["photos"] / r["photos_per_s"] for r in runs],
        "latencies_s": latencies,
        "cpu_share": {
            who: statistics.median(r["cpu_share"][who] for r in runs)
            for who in ("worker", "broker", "publisher")
        }
        if runs
        else {},
        "steady": steady,
        "metrics": metrics,
    }


def _outcomes_of(worker: WorkerProcess, total: int, timeout_s: float) -> None:
    """``wait_outcomes`` for the worker's topics; when they do not come, the worker's log says
    why (an agent that raised on its first event stays up and consumes nothing)."""
    try:
        wait_outcomes(worker.settings, total, timeout_s)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; the end of {worker.log}:\n{worker.tail_log()}") from exc


def measure_on_kafka(photos: Photos, folder: Path, repeats: int) -> dict[str, Any]:
    """The default point on Apache Kafka, at least once and exactly once (or why not)."""
    base = private_broker_settings(production_settings(), folder / "kafka-broker", engine="kafka")
    base = base.model_copy(
        update={"blobs": base.blobs.model_copy(update={"root": folder / "blobs"})}
    )
    broker = local_broker(base)
    try:
        broker.start()
    except DarkroomError as exc:
        return {"skipped": str(exc)}
    try:
        rows: dict[str, Any] = {"version": base.broker.kafka_version}
        for guarantee in ("at_least_once", "exactly_once"):
            print(f"Darkroom worker on Apache Kafka, {guarantee}", flush=True)
            worker = base.worker.model_copy(update={"guarantee": guarantee})
            rows[guarantee] = measure_worker(
                base.model_copy(update={"worker": worker}),
                photos,
                folder / f"kafka-{guarantee}",
                *DEFAULT_POINT,
                repeats,
            )
        return rows
    finally:
        broker.stop()


def before_promotions(base: Settings, folder: Path) -> tuple[Settings, list[str]]:
    """``base`` serving the models that promoted experiments replaced (a scratch copy of
    models/ with every promotion rolled back), and the names of the models it serves instead."""
    models = folder / "models-before-promotions"
    shutil.copytree(base.paths.models, models)
    repository = ModelRepository(models, base.paths.model_cache)
    retired = [m.name for m in repository.variants() if m.rollout and m.rollout.mode == "retired"]
    for name in retired:
        promote(ModelRepository(models, base.paths.model_cache), name)
    paths = base.paths.model_copy(update={"models": models})
    return base.model_copy(update={"paths": paths}), retired


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def measure_all(
    photos: Photos,
    folder: Path,
    repeats: int,
    sweep: Sequence[tuple[int, float]],
    full: bool,
    timeout_s: float,
) -> dict[str, Any]:
    """The ceiling, the naive worker and Darkroom's points on one private embedded broker; when
    ``full``, also the fp32 row, the steady half rate and the default point on Apache Kafka."""
    base = private_broker_settings(production_settings(), folder / "broker")
    base = base.model_copy(
        update={"blobs": base.blobs.model_copy(update={"root": folder / "blobs"})}
    )
    broker = EmbeddedBroker(base)
    broker.start()
    broker_pid = int(json.loads(broker.pid_file.read_text())["pid"])
    try:
        print(f"ceiling: the engine alone on the same {len(photos)} photos", flush=True)
        repository = ModelRepository(base.paths.models, base.paths.model_cache)
        enricher = Enricher(base.engine, repository)
        try:
            ceiling = engine_ceiling(enricher, photos, DEFAULT_POINT[0], 1)
            print("naive worker", flush=True)
            naive = measure_worker(
                base,
                photos,
                folder / "naive",
                1,
                0.01,
                1,
                module="benchmarks.naive_worker",
                timeout_s=timeout_s,
                broker_pid=broker_pid,
            )
            # the ceiling again after each of the default point's runs: a busy spell of the
            # machine then falls on both, and their ratio compares like with like
            rounds = [len(photos) / ceiling["engine_photos_per_s"]["median"]]

            def ceiling_round() -> None:
                print("ceiling: the engine alone again", flush=True)
                rounds.append(engine_round(enricher, photos, DEFAULT_POINT[0]))

            print("Darkroom worker: batch 16, wait 0.2 s", flush=True)
            default = measure_worker(
                base,
                photos,
                folder / "default",
                *DEFAULT_POINT,
                repeats,
                timeout_s=timeout_s,
                after_run=ceiling_round,
                broker_pid=broker_pid,
            )
            ceiling["engine_photos_per_s"] = per_second(len(photos), rounds)
        finally:
            enricher.close()
        fp32 = measure_fp32(base, photos, folder) if full else None
        results = [default]
        for batch, wait in sweep:
            print(f"Darkroom worker: batch {batch}, wait {wait} s", flush=True)
            results.append(
                measure_worker(base, photos, folder / f"b{batch}w{wait}", batch, wait, 1)
            )
        if full:
            half = default["photos_per_s"]["median"] / 2
            print(f"Darkroom worker at a steady {half:.2f} photos/s", flush=True)
            steady = measure_worker(
                base, photos, folder / "steady", *DEFAULT_POINT, 0, steady_rate=half
            )
            default["steady"] = steady["steady"]
            default["steady_metrics"] = steady["metrics"]
    finally:
        broker.stop()
    kafka = measure_on_kafka(photos, folder, 1) if full else {"skipped": "not in a smoke run"}
    return {
        "machine": machine(),
        "photos": len(photos),
        "repeats": repeats,
        "ceiling": ceiling,
        "naive": naive,
        "darkroom": results,
        "darkroom_default": default,
        "fp32": fp32,
        "kafka": kafka,
        # at half rate a batch holds about one photo: the wait, then at worst its own
        # inference and the one of the photo ahead of it
        "latency_bound_s": DEFAULT_POINT[1] + 2 * ceiling["one_photo_inference_s"][99],
    }


def measure_fp32(base: Settings, photos: Photos, folder: Path) -> dict[str, Any]:
    """The default point serving the models that promoted experiments replaced."""
    fp32_settings, rolled_back = before_promotions(base, folder)
    print(f"Darkroom worker with {', '.join(rolled_back) or 'no'} rolled back", flush=True)
    fp32 = measure_worker(fp32_settings, photos, folder / "fp32", *DEFAULT_POINT, 1)
    fp32["models"] = rolled_back
    return fp32


def render(out: Path) -> None:
    """e2e.md and e2e.png again from ``out``/e2e.json."""
    report = json.loads((out / "e2e.json").read_text())
    (out / "e2e.md").write_text(markdown(report))
    plot(report, out / "e2e.png")
    print(markdown(report))


def main(argv: Sequence[str] | None = None) -> None:
    """Run everything against one private broker; write JSON, markdown and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 photos, one run per point")
    parser.add_argument("--photos", type=int, default=240, help="photos per run (default 240)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the default point")
    parser.add_argument(
        "--no-sweep",
        dest="sweep",
        action="store_false",
        help="leave out batch 1 and 4 and waits 0.05 and 0.5 s (1 run each; in by default: "
        "the plot's throughput-against-batch and -wait panels are drawn from them)",
    )
    output_args(
        parser,
        smoke=f"{SMOKE_PHOTOS} photos, one run: the ceiling, the naive worker and the default "
        "point on tansu",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render e2e.md and e2e.png from an existing e2e.json in --out",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        render(args.out)
        return
    configure_logging("WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the broker and workers
    out = out_of(args)
    repeats = 1 if args.quick or args.smoke else args.runs
    count = SMOKE_PHOTOS if args.smoke else 16 if args.quick else args.photos
    photos = photoset.mixed_set(count)
    sweep = (
        [(1, 0.2), (4, 0.2), (16, 0.05), (16, 0.5)]
        if args.sweep and not (args.smoke or args.quick)
        else []
    )
    # a smoke run's few photos take seconds: a worker that consumes nothing fails it in 2 min
    timeout_s = 120.0 if args.smoke else 600.0
    with tempfile.TemporaryDirectory(prefix="darkroom-e2e-") as tmp:
        folder = Path(tmp)
        report = measure_all(photos, folder, repeats, sweep, not args.smoke, timeout_s)
        write_results("e2e", report, markdown(report), out)
        # a smoke run draws the plot too (into its scratch folder, dropped): it breaks there
        plot(report, (out or folder) / "e2e.png")
    if out is not None:
        print(f"wrote {out}/e2e.json, e2e.md, e2e.png")


if __name__ == "__main__":
    main()
