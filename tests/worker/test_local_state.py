"""Local tables that cannot be trusted: after a restart of the memory-only broker, after topics
were deleted on Kafka, and after an unclean stop under exactly_once."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource
from rocksdict import Options, Rdict

from streams.broker import EmbeddedBroker, private_broker_settings
from streams.config import Settings, load_settings
from streams.kafka.clients import make_admin
from streams.kafka.topics import ensure_topics, project_topics
from streams.models.repository import ModelRepository
from streams.worker import local_state
from streams.worker.local_state import changelog_topic
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    for_test_workers,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import publish_folder

TABLES = ("photo_state", "user_stats", "dup_index", "embeddings")


def tabledir_of(worker: WorkerProcess) -> Path:
    return worker.settings.worker.data_dir / "v1" / "tables"


def process_some(settings: Settings, tmp_path: Path, worker: WorkerProcess, name: str) -> None:
    write_photos(tmp_path / name, {name: 3})
    delivered = publish_folder(settings, tmp_path / name)
    with running(worker):
        wait_consumed(settings)
    assert len(delivered) == 3
    assert local_state.persisted_offsets(tabledir_of(worker)), "no local tables written"


@pytest.mark.broker
def test_embedded_broker_restart_drops_stale_tables_and_goes_on(
    tmp_path: Path, repository: ModelRepository
) -> None:
    base = for_test_workers(load_settings())
    settings = private_broker_settings(base, tmp_path / "broker", engine="embedded")
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        ensure_topics(settings, project_topics(settings))
        worker = WorkerProcess(settings, tmp_path, "w")
        process_some(settings, tmp_path, worker, "before")
        broker.stop()  # memory only: every topic, changelogs included, is gone
        broker.start()
        ensure_topics(settings, project_topics(settings))
        write_photos(tmp_path / "after", {"after": 2})
        publish_folder(settings, tmp_path / "after")
        with running(worker):  # Faust alone crashes here with ConsistencyError
            enriched, failed = wait_for_outcomes(settings, 2)
        assert len(enriched) == 2 and not failed
        log = worker.log.read_text(errors="replace")
        assert log.count("local tables dropped") == 1
        assert "embedded broker restarted" in log
    finally:
        broker.stop()


@pytest.mark.broker
def test_kafka_topics_recreated_refuses_to_start_until_reset(
    kafka_worker_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_worker_settings
    worker = WorkerProcess(settings, tmp_path, "w")
    process_some(settings, tmp_path, worker, "before")

    admin = make_admin(settings)
    # the changelogs are compacted topics, so a table's recovery reads one record per key
    changelogs = [changelog_topic(settings.worker.app_id, t) for t in TABLES]
    described = admin.describe_configs([ConfigResource("topic", t) for t in changelogs])
    for resource, future in described.items():
        assert future.result(timeout=30)["cleanup.policy"].value == "compact", resource
    doomed = [t.name for t in project_topics(settings)]
    doomed += changelogs
    for future in admin.delete_topics(doomed, operation_timeout=30).values():
        future.result(timeout=60)
    wait_for(
        lambda: not set(doomed) & set(admin.list_topics(timeout=10).topics),
        60,
        "the topics to be deleted",
    )
    ensure_topics(settings, project_topics(settings))

    refused = worker.start()
    assert refused.process is not None
    assert refused.process.wait(120) == 4, worker.tail_log()  # SetupError
    assert "--reset-local-state" in worker.log.read_text(errors="replace")

    reset = WorkerProcess(settings, tmp_path, "w", args=("--reset-local-state",))
    write_photos(tmp_path / "after", {"after": 2})
    publish_folder(settings, tmp_path / "after")
    with running(reset):
        enriched, failed = wait_for_outcomes(settings, 2)
    assert {e["user_id"] for e in enriched} == {"after"} and not failed


def make_tables(tabledir: Path) -> None:
    """A table partition as Faust leaves it, before any changelog offset (so never "stale")."""
    tabledir.mkdir(parents=True)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    Rdict(str(tabledir / "photo_state-0.db"), options).close()


def test_a_damaged_table_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "v1" / "tables" / "photo_state-0.db").mkdir(parents=True)  # no RocksDB in it
    with pytest.raises(local_state.StaleLocalStateError, match="--reset-local-state"):
        local_state.prepare(load_settings(), tmp_path / "v1" / "tables")
    local_state.prepare(load_settings(), tmp_path / "v1" / "tables", reset=True)


def test_exactly_once_keeps_tables_only_after_a_clean_stop(tmp_path: Path) -> None:
    settings = load_settings()
    eos = for_test_workers(settings, guarantee="exactly_once")
    tabledir = tmp_path / "v1" / "tables"

    make_tables(tabledir)
    local_state.mark_clean_stop(tabledir)
    local_state.prepare(eos, tabledir)
    assert tabledir.exists(), "a clean stop's tables were dropped"
    assert not (tmp_path / "v1" / local_state.CLEAN_STOP_MARKER).exists(), "marker survives start"

    local_state.prepare(eos, tabledir)  # the run above never stopped cleanly (kill -9)
    assert not tabledir.exists(), "exactly_once kept tables of an unclean stop"

    make_tables(tabledir)
    local_state.prepare(settings, tabledir)  # at_least_once: its tables are idempotent
    assert tabledir.exists()

    local_state.prepare(settings, tabledir, reset=True)
    assert not tabledir.exists(), "--reset-local-state kept the tables"
