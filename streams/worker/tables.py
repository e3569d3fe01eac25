"""The worker's RocksDB-backed Faust tables (each with a changelog topic for recovery).

Each table partition is a RocksDB folder, locked by the process that opens it. Faust's store
closes a revoked partition only when the garbage collector frees its handle (its ``db.close()``
is commented out), so any reference left somewhere kept the lock: a worker that later took the
partition back could not open it ("lock hold by current process"), retried for 30 s and
stopped (seen once in about 40 stress runs of the two-worker failover test). Here a revoked
partition's handle is closed as it is revoked, whoever still refers to it (a reference kept is
logged with its holders), and the handles are read from a snapshot: the pipeline's threads
look keys up across every partition (they have no current event), and a partition revoked
under them is skipped as if it had gone just before the look-up, instead of the look-up
failing on a closed handle or on Faust's dict changing size mid-iteration.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any

import faust
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP
from rocksdict import DbClosedError

from streams.logs import get_logger
from streams.pipeline.keys import split_key, user_prefix

log = get_logger("darkroom.worker")
SLOW_OPEN_S = 0.5  # an open slower than this is logged at info (the rest at debug)


def _holders(db: Any) -> list[str]:
    """Who refers to ``db`` (for the log): a frame, coroutine or generator by its function and
    line, anything else by its type."""
    found = []
    for referrer in gc.get_referrers(db):
        code = getattr(referrer, "f_code", None)
        frame = getattr(referrer, "cr_frame", None) or getattr(referrer, "gi_frame", None)
        if frame is not None:
            code, line = frame.f_code, frame.f_lineno
        elif code is not None:
            line = referrer.f_lineno
        if code is not None:
            found.append(f"{type(referrer).__name__} {code.co_name} ({code.co_filename}:{line})")
        else:
            found.append(type(referrer).__name__)
    return found


class PartitionStore(faust_rocksdb.Store):
    """Faust's RocksDB store whose revoked partitions are closed at once (module docstring)."""

    def revoke_partitions(self, table: Any, tps: Set[TP]) -> None:
        started = time.perf_counter()
        closed = []
        for tp in tps:
            if tp.topic not in table.changelog_topic.topics:
                continue
            db = self._dbs.pop(tp.partition, None)
            if db is None:
                continue
            # the local name and getrefcount's argument: 2; more is someone else's reference
            if sys.getrefcount(db) > 2:
                log.warning(
                    "revoked table partition still referenced; closing it anyway",
                    table=self.table_name,
                    partition=tp.partition,
                    holders=[h for h in _holders(db) if " revoke_partitions " not in h],
                )
            db.close()  # releases RocksDB's lock now (a live iterator alone still holds it)
            closed.append(tp.partition)
        if closed:
            log.debug(
                "table partitions closed",
                table=self.table_name,
                partitions=sorted(closed),
                seconds=round(time.perf_counter() - started, 4),
            )

    def _open_for_partition(self, partition: int) -> Any:
        started = time.perf_counter()
        db = super()._open_for_partition(partition)
        seconds = time.perf_counter() - started
        (log.info if seconds > SLOW_OPEN_S else log.debug)(
            "table partition opened",
            table=self.table_name,
            partition=partition,
            seconds=round(seconds, 4),
        )
        return db

    def _get_bucket_for_key(self, key: bytes) -> Any:
        # Faust's walks the live dict, which a rebalance changes under the pipeline's threads
        try:
            partition = self._key_index[key]
            candidates = [(partition, self._dbs[partition])]
        except KeyError:
            candidates = list(self._dbs.items())
        for partition, db in candidates:
            try:
                value = db.get(key) if db.key_may_exist(key) else None
            except (DbClosedError, RuntimeError):
                if self._dbs.get(partition) is db:
                    raise  # still this worker's: a real failure
                continue  # revoked (and closed) since the snapshot: as if gone before
            if value is not None:
                self._key_index[key] = partition
                return faust_rocksdb._DBValueTuple(db, value)
        return None

    def _dbs_for_key(self, key: bytes) -> list[Any]:
        try:
            return [self._dbs[self._key_index[key]]]
        except KeyError:
            return list(self._dbs.values())

    async def stop(self) -> None:
        for db in self._dbs.values():
            db.close()  # Faust leaves it to the garbage collector
        await super().stop()


class Table(faust.Table[Any, Any]):
    """faust.Table whose RocksDB store is ``PartitionStore``."""

    def _new_store_by_url(self, url: Any) -> Any:
        if str(url).split(":", 1)[0] != "rocksdb":
            return super()._new_store_by_url(url)
        return PartitionStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )


@dataclass(frozen=True)
class Tables:
    """photo_state, user_stats, the near-duplicate index (embeddings, DCT blocks) and groups, the
    tag index, people (each user's persons) and each person's photos; and what was forgotten.

    Every table is written while processing an upload, under that upload's partition, and the
    uploads topic is keyed by user id: so one user's photos, stats and index all live on the
    worker that owns the user's partition (co-partitioned with photos.uploaded).
    """

    photo_state: Any  # keys.photo_key(user_id, photo_id) -> state.PhotoState
    user_stats: Any  # user_id -> state.UserStats
    dup_index: Any  # keys.photo_key(user_id, photo_id) -> [perceptual hash, sequence number]
    embeddings: Any  # keys.photo_key(user_id, photo_id) -> dedup.pack_embedding(...)
    dct_blocks: Any  # keys.photo_key(user_id, photo_id) -> dedup.pack_block(...)
    dup_groups: Any  # keys.entry_key(user_id, first photo id, photo id) -> bestshot.rows_of
    tag_photos: Any  # keys.entry_key(user_id, tag, photo_id) -> the photo's upload time
    people: Any  # keys.user_prefix(user_id) and the rows under it: people_state.rows_of
    person_photos: Any  # keys.entry_key(user_id, person_id, photo_id) -> its upload time
    # keys.photo_key(user_id, photo_id) of a deleted photo, keys.user_prefix(user_id) of an
    # erased user -> when, and by which request (streams/worker/forgetting.py); nothing else
    forgotten: Any

    @classmethod
    def create(cls, app: faust.App, partitions: int) -> Tables:
        """Declare the tables on ``app``."""

        def table(name: str, help_: str) -> Any:
            # keys and values go through Faust's table serializers (JSON by default)
            made = Table(
                app,
                name=name,
                default=None,
                beacon=app.tables.beacon,
                partitions=partitions,
                help=help_,
            )
            return app.tables.add(made)

        return cls(
            photo_state=table(
                "photo_state", "user id/photo id -> status, event id, model versions"
            ),
            user_stats=table("user_stats", "user id -> photo count, labels, faces, flagged"),
            dup_index=table("dup_index", "user id/photo id -> [perceptual hash, sequence]"),
            embeddings=table(
                "embeddings", "user id/photo id -> 8-bit embedding (duplicates, similar)"
            ),
            dct_blocks=table("dct_blocks", "user id/photo id -> 8x8 DCT block (duplicate check)"),
            dup_groups=table("dup_groups", "user id/first photo id/photo id -> a copy's shot"),
            tag_photos=table("tag_photos", "user id/tag/photo id -> the photo's upload time"),
            people=table("people", "user id/[c or a/id] -> people, a person or an alias"),
            person_photos=table("person_photos", "user id/person id/photo id -> upload time"),
            forgotten=table("forgotten", "user id/[photo id] -> when it was forgotten"),
        )


def rows(table: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(key, value) of every key of ``table`` that starts with ``prefix``, read as a range of
    its RocksDB partitions from the prefix on (a user lives in one partition; the stores of
    partitions not assigned here are closed). A mapping with ``scan(prefix)`` (the capacity
    benchmark's) scans itself; a plain mapping (tests) is filtered."""
    store = getattr(table, "data", None)
    databases = getattr(store, "_dbs", None)  # faust.stores.rocksdb.Store: one DB a partition
    if store is None or databases is None:
        scan = getattr(table, "scan", None)
        if scan is not None:
            yield from scan(prefix)
        else:
            yield from ((k, v) for k, v in list(table.items()) if k.startswith(prefix))
        return
    start = store._encode_key(prefix)[:-1]  # the JSON string's opening quote, no closing one
    for database in list(databases.values()):
        for raw_key, raw_value in database.items(from_key=start):
            if not raw_key.startswith(start):
                break
            yield store._decode_key(raw_key), store._decode_value(raw_value)


def user_rows(table: Any, user_id: str) -> Iterator[tuple[str, Any]]:
    """(photo id, value) of every key ``keys.photo_key(user_id, ...)`` of ``table`` (for the
    lists keyed ``keys.entry_key``: "name/photo id")."""
    for key, value in rows(table, user_prefix(user_id)):
        yield split_key(key)[1], value


def newest(table: Any, prefix: str, limit: int) -> tuple[list[str], int]:
    """The newest ``limit`` photo ids of a list (``keys.entry_prefix``; each value is the
    photo's upload time), newest first, and how many the list holds."""
    found = sorted(((str(v), key[len(prefix) :]) for key, v in rows(table, prefix)), reverse=True)
    return [photo for _, photo in found[:limit]], len(found)


def put(table: Any, key: str, value: Any) -> None:
    """``table[key] = value``; None deletes the key (a changelog tombstone) if it is there."""
    if value is not None:
        table[key] = value
    elif table.get(key) is not None:
        del table[key]


def partition_rows(table: Any, partition: int) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of ``table``'s partition ``partition`` held here (none when it is not
    assigned here), read as the scan goes; a plain mapping (tests) has one partition."""
    store = getattr(table, "data", None)
    databases = getattr(store, "_dbs", None)
    if store is None or databases is None:
        yield from list(table.items())
        return
    database = databases.get(partition)
    if database is None:
        return
    for raw_key, raw_value in database.items():
        yield store._decode_key(raw_key), store._decode_value(raw_value)
