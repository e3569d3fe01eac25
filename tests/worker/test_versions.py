"""Backfills: replaying uploads re-enriches only when a model version changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.config import REPO_ROOT, Settings
from streams.engine.build import build as build_model
from streams.models.repository import ModelRepository
from tests.photos import write_photos
from tests.worker.harness import (
    WorkerProcess,
    outcomes,
    read_topic,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import produce, publish_folder

pytestmark = pytest.mark.broker
# the production moderation model (promoted from a shadow experiment) and a version bump of it
MODERATION = "open_nsfw_int8"
OLD, NEW = "yahoo-open-nsfw-1-int8-qdq-1", "yahoo-open-nsfw-1-int8-qdq-2"


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)  # above the transport
def test_a_new_model_version_re_enriches_a_replay_and_the_same_version_does_not(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    write_photos(tmp_path / "photos", {"ann": 3, "ben": 3}, size=128)
    delivered = publish_folder(settings, tmp_path / "photos")
    worker = WorkerProcess(settings, tmp_path, "w")
    with running(worker):
        first, _ = wait_for_outcomes(settings, len(delivered))
        wait_for(
            lambda: all(worker.get(f"/users/{u}")[1].get("photos") == 3 for u in ("ann", "ben")),
            30,
            "tables after the outputs",
        )
        before = {u: worker.get(f"/users/{u}")[1] for u in ("ann", "ben")}
    replay = [(u["_key"], u["_value"]) for u in read_topic(settings, settings.topics.uploaded)]

    # the same models: a replay is absorbed
    with running(worker):
        produce(settings, replay)
        wait_consumed(settings)
        assert len(outcomes(settings)[0]) == len(first)

    # the moderation model bumped to a new version: the replay is enriched again, stats unchanged
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    manifest = models / MODERATION / "model.toml"
    manifest.write_text(manifest.read_text().replace(f'"{OLD}"', f'"{NEW}"'))
    repository = ModelRepository(models, settings.paths.model_cache)
    build_model(repository, repository.get(MODERATION))
    bumped = worker.settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"models": models})}
    )
    upgraded = WorkerProcess(bumped, tmp_path, "w")  # same data folder and consumer group
    with running(upgraded):
        produce(settings, replay)
        enriched, failed = wait_for_outcomes(settings, 2 * len(delivered))
        assert not failed
        again = [e for e in enriched if e["produced_by"]["moderation"]["version"] == NEW]
        assert len(again) == len(delivered) == len(enriched) - len(first)
        assert {e["photo_id"] for e in again} == {d.photo_id for d in delivered}
        assert {(e["photo_id"], e["upload_event_id"]) for e in again} == {
            (e["photo_id"], e["upload_event_id"]) for e in first
        }  # same uploads
        # a new attempt at each: its own outcome id, so deduplicating on event_id keeps it
        assert {e["attempt"] for e in again} == {2}
        assert not {e["event_id"] for e in again} & {e["event_id"] for e in first}
        # re-enriched, not counted twice (tables change just after the outputs: poll)
        wait_for(
            lambda: {u: upgraded.get(f"/users/{u}")[1] for u in ("ann", "ben")} == before,
            30,
            "the same stats as before the backfill",
        )
        # one of ann's (the topic's order across partitions is not fixed: again[0] may be ben's)
        ann_photo = next(e["photo_id"] for e in again if e["user_id"] == "ann")
        wait_for(
            lambda: (
                upgraded.get(f"/users/ann/photos/{ann_photo}")[1]
                .get("model_versions", {})
                .get(MODERATION)
                == NEW
            ),
            30,
            "photo_state to record the new version",
        )
        _, photo = upgraded.get(f"/users/ann/photos/{ann_photo}")
        assert photo["model_versions"][MODERATION] == NEW
