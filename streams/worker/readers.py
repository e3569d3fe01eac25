"""The pipeline's read-only views of the worker's tables: the near-duplicate search's, the
people clustering's, and the skip rule that reads what a photo's state says is done; and the
pipeline a worker runs over them (``table_pipeline``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.config import Settings
from streams.contracts import headers as headers_
from streams.engine import Enricher
from streams.pipeline import DuplicatePolicy, DuplicateSearch, Photo, Pipeline
from streams.pipeline.batch import StageTimer
from streams.pipeline.bestshot import BestShots, Group, Shot
from streams.pipeline.dedup import Index
from streams.pipeline.faces import Given
from streams.pipeline.keys import photo_key, split_key
from streams.pipeline.outputs import Attempt
from streams.pipeline.people import PeoplePolicy, PeopleSearch
from streams.pipeline.photo import RefusalRule
from streams.worker import state
from streams.worker.layouts import group_at, people_at
from streams.worker.tables import Tables, user_rows


class TableDuplicates:
    """The near-duplicate search's and the best-shot ranking's view of the worker's tables
    (read-only)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def index_of(self, user_id: str) -> Index | None:
        found = [[photo, *entry] for photo, entry in user_rows(self.tables.dup_index, user_id)]
        return sorted(found, key=lambda entry: (entry[2], entry[0])) or None

    def embedding_of(self, key: str) -> str | None:
        found: str | None = self.tables.embeddings.get(key)
        return found

    def block_of(self, key: str) -> str | None:
        found: str | None = self.tables.dct_blocks.get(key)
        return found

    def _summary(self, user_id: str, photo_id: str) -> dict[str, Any]:
        found = self.tables.photo_state.get(photo_key(user_id, photo_id))
        return found["summary"] if found is not None and found["status"] == "enriched" else {}

    def group_of(self, user_id: str, photo_id: str) -> str:
        # a photo enriched before groups were kept: the one photo it pointed at, if any
        summary = self._summary(user_id, photo_id)
        return str(summary.get("group") or summary.get("duplicate_of") or photo_id)

    def shot_of(self, user_id: str, photo_id: str) -> Shot | None:
        shot = self._summary(user_id, photo_id).get("shot")
        return Shot.from_json(shot) if shot else None

    def group(self, key: str) -> Group | None:
        return group_at(self.tables, *split_key(key))


class TablePeople:
    """The people clustering's view of the worker's tables (read-only)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def people_of(self, user_id: str) -> dict[str, Any] | None:
        return people_at(self.tables, user_id)

    def clusters_of(self, user_id: str, photo_id: str) -> Given | None:
        found = self.tables.photo_state.get(photo_key(user_id, photo_id))
        if found is None or found["status"] != "enriched":
            return None
        return Given.from_json(found["summary"].get("people"))


VersionsOf = Callable[[str], dict[str, str]]  # user id -> the model versions that serve it


class AlreadyDone:
    """The worker's skip rule: done with these models (a redelivery or a replay), not forced;
    and its attempt rule, which numbers each upload's attempt at its photo."""

    def __init__(self, tables: Tables, versions: VersionsOf) -> None:
        self.tables, self.versions = tables, versions

    def __call__(self, photo: Photo) -> bool:
        assert photo.upload is not None
        if photo.message.header(headers_.FORCE) == b"1":
            return False
        return state.already_done(
            self.tables.photo_state.get(
                photo_key(photo.upload["user_id"], photo.upload["photo_id"])
            ),
            photo.upload["event_id"],
            self.versions(photo.upload["user_id"]),
            Attempt.of(photo.message).key,
        )

    def attempt(self, photo: Photo) -> int:
        """Which attempt at its photo ``photo`` is (streams.worker.state.attempt_number)."""
        assert photo.upload is not None
        return state.attempt_number(
            self.tables.photo_state.get(
                photo_key(photo.upload["user_id"], photo.upload["photo_id"])
            ),
            photo.upload["event_id"],
            Attempt.of(photo.message).key,
            self.versions(photo.upload["user_id"]),
        )


def table_pipeline(
    settings: Settings,
    enricher: Enricher,
    tables: Tables,
    *,
    refuse: RefusalRule,
    on_stage: StageTimer = lambda _stage, _seconds: None,
) -> Pipeline:
    """The pipeline a worker runs: its skip and attempt rules, duplicate search, best-shot
    ranking and people read ``tables``; ``refuse`` is the forgetting's refusal rule."""
    worker = settings.worker
    duplicates = TableDuplicates(tables)
    done = AlreadyDone(tables, enricher.model_versions_for)
    return Pipeline.from_settings(
        settings,
        enricher,
        skip=done,
        attempts=done.attempt,
        refuse=refuse,
        duplicates=DuplicateSearch(duplicates, DuplicatePolicy.from_settings(worker)),
        best_shots=BestShots(duplicates),
        people=PeopleSearch(
            TablePeople(tables),
            PeoplePolicy(
                join_distance=worker.people_join_distance,
                merge_distance=worker.people_merge_distance,
                min_faces=worker.people_min_faces,
                max_clusters=worker.people_max_clusters,
            ),
        ),
        on_stage=on_stage,
    )
