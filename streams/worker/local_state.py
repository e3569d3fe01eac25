"""The worker's tables on local disk: when they can be trusted, and dropping them when not.

Faust keeps each table partition in a RocksDB folder (``<tabledir>/<table>-<partition>.db``)
with the offset of the last changelog record it holds. At start it reads the changelog from
there on. Two cases make that local copy wrong, and Faust only notices the first, by crashing:

* **The changelog is behind it** (Faust's ``ConsistencyError``: "persisted offset ... is higher
  than the last offset in that topic"). On the embedded broker this is normal after a restart:
  tansu keeps topics in memory, so every topic starts empty again; the local tables are dropped
  (one log line) and rebuilt from the new, empty changelog. On Apache Kafka it means the topics
  were deleted or recreated behind the worker's back: the worker refuses to start and says how
  to drop the tables on purpose (``darkroom worker --reset-local-state``).
* **It holds writes of an aborted transaction** (``exactly_once`` only). Table writes reach
  RocksDB when they are made, before their transaction commits; a ``kill -9`` aborts the
  transaction, but not the local writes. A table that says "done" for a photo whose output was
  aborted would make the restarted worker skip that photo forever. So, as Kafka Streams does
  under exactly-once, the local tables are trusted only after a clean stop (a marker file written
  as the worker stops); otherwise they are rebuilt from the committed changelog (read_committed).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition
from rocksdict import AccessType, Options, Rdict

from streams.config import Settings
from streams.errors import SetupError
from streams.kafka.clients import make_consumer, watermarks
from streams.logs import get_logger

log = get_logger("darkroom.worker")

CLEAN_STOP_MARKER = "clean-stop"
_OFFSET_KEY = b"__faust\0offset__"  # faust/stores/rocksdb.py: Store.offset_key
_PARTITION_DB = re.compile(r"^(?P<table>.+)-(?P<partition>\d+)\.db$")


class StaleLocalStateError(SetupError):
    """The local tables are ahead of their changelog on a durable broker."""


@dataclass(frozen=True)
class StalePartition:
    """A table partition whose local copy is ahead of its changelog."""

    table: str
    partition: int
    persisted: int  # offset of the last changelog record the local copy holds
    last: int  # offset of the last record in the changelog now (-1: empty)

    def __str__(self) -> str:
        return f"{self.table}[{self.partition}] at {self.persisted}, changelog at {self.last}"


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's changelog topic name for ``table``."""
    return f"{app_id}-{table}-changelog"


def persisted_offsets(tabledir: Path) -> dict[tuple[str, int], int]:
    """(table, partition) -> last changelog offset held locally, for every partition folder."""
    found: dict[tuple[str, int], int] = {}
    if not tabledir.is_dir():
        return found
    for path in sorted(tabledir.iterdir()):
        match = _PARTITION_DB.match(path.name)
        if match is None or not path.is_dir():
            continue
        try:
            db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        except Exception as exc:  # rocksdict raises a bare Exception for a damaged folder
            raise StaleLocalStateError(
                f"cannot read the local table {path}: {exc}. Start the worker once with "
                "`darkroom worker --reset-local-state` to rebuild it from the changelog"
            ) from exc
        try:
            raw = db.get(_OFFSET_KEY)
        finally:
            db.close()
        if raw is not None:
            found[(match["table"], int(match["partition"]))] = int(raw)
    return found


def stale_partitions(settings: Settings, tabledir: Path) -> list[StalePartition]:
    """Table partitions whose local copy holds offsets their changelog does not have."""
    local = persisted_offsets(tabledir)
    if not local:
        return []
    stale = []
    consumer = make_consumer(settings)
    try:
        for (table, partition), persisted in local.items():
            topic = changelog_topic(settings.worker.app_id, table)
            try:
                _low, high = watermarks(consumer, TopicPartition(topic, partition), 10.0)
            except KafkaException:  # the topic or the partition is gone
                high = 0
            if persisted >= high:
                stale.append(StalePartition(table, partition, persisted, high - 1))
    finally:
        consumer.close()
    return stale


def drop(tabledir: Path, reason: str) -> None:
    """Delete the local tables (they are rebuilt from the changelog as the worker starts)."""
    if tabledir.exists():
        shutil.rmtree(tabledir)
        log.warning("local tables dropped; rebuilding them from the changelog", reason=reason)


def prepare(settings: Settings, tabledir: Path, *, reset: bool = False) -> None:
    """Make the local tables trustworthy before Faust opens them (see the module docstring)."""
    marker = tabledir.parent / CLEAN_STOP_MARKER
    if reset:
        drop(tabledir, "--reset-local-state")
    elif settings.worker.guarantee == "exactly_once" and tabledir.exists() and not marker.exists():
        drop(
            tabledir,
            "exactly_once: the last run did not stop cleanly, so the local tables may hold "
            "writes of transactions that were aborted",
        )
    stale = stale_partitions(settings, tabledir)
    if stale:
        listed = "; ".join(str(s) for s in stale[:4]) + (" ..." if len(stale) > 4 else "")
        if settings.kafka.profile == "embedded":
            drop(tabledir, f"the embedded broker restarted (memory only): {listed}")
        else:
            raise StaleLocalStateError(
                f"the local tables in {tabledir} are ahead of their changelog topics on "
                f"{settings.kafka.bootstrap} ({listed}): the topics were deleted or recreated "
                "since this worker last ran. Start it once with `darkroom worker "
                "--reset-local-state` to drop the local tables and rebuild them from the "
                "changelog, or point DARKROOM_WORKER_DATA_DIR at the data of this cluster"
            )
    marker.unlink(missing_ok=True)


def mark_clean_stop(tabledir: Path) -> None:
    """Record that the tables were closed cleanly (the next exactly_once start keeps them)."""
    tabledir.parent.mkdir(parents=True, exist_ok=True)
    (tabledir.parent / CLEAN_STOP_MARKER).write_text("tables closed cleanly\n", encoding="utf-8")
