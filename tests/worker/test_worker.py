"""The stream application on the real broker: conservation, queries, idempotency, recovery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.config import Settings
from streams.samples import write_demo_set
from tests.worker.harness import (
    WorkerProcess,
    outcomes,
    running,
    wait_consumed,
    wait_for,
    wait_for_outcomes,
)
from tests.worker.publishing import not_an_upload, produce, publish_folder, upload

pytestmark = pytest.mark.broker


def test_every_upload_ends_exactly_once_then_replays_and_recovery_change_nothing(
    stream_settings: Settings, tmp_path: Path
) -> None:
    settings = stream_settings
    samples = write_demo_set(tmp_path / "photos")
    delivered = publish_folder(settings, tmp_path / "photos")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"\xff\xd8\xff not really")
    tampered = settings.blobs.root / "mallory" / "tampered.jpg"
    tampered.parent.mkdir(parents=True, exist_ok=True)
    tampered.write_bytes(delivered[0].file.path.read_bytes())
    hostile = {
        "missing": upload(settings, "missing", (settings.blobs.root / "gone.jpg").as_uri()),
        "escape": upload(settings, "escape", outside.as_uri()),
        "tampered": upload(
            settings, "tampered", tampered.resolve().as_uri(), content_sha256="0" * 64
        ),
        "not-a-photo": upload(settings, "not-a-photo", b"just text, inline"),
    }
    produce(
        settings,
        [
            (b"mallory", b"definitely not avro"),
            (b"mallory", not_an_upload(settings)),
            *((b"mallory", value) for value in hostile.values()),
        ],
    )
    expected = len(samples) + 6
    worker = WorkerProcess(settings, tmp_path, "w1")
    with running(worker):
        wait_for_outcomes(settings, expected)
        wait_consumed(settings)  # every output of every upload is out by now
        enriched, failed = outcomes(settings)
        assert len(enriched) + len(failed) == expected

        # every photo exactly once, every failure with its reason, the bytes kept
        ids = [e["photo_id"] for e in enriched] + [f["photo_id"] for f in failed if f["photo_id"]]
        assert len(ids) == len(set(ids)) == expected - 2
        assert sorted(f["reason"] for f in failed) == sorted(
            [
                "MALFORMED_EVENT",
                "MALFORMED_EVENT",
                "BLOB_MISSING",
                "BLOB_MISSING",
                "BLOB_CHECKSUM_MISMATCH",
                "UNSUPPORTED_FORMAT",
                "CORRUPT_IMAGE",
                "IMAGE_TOO_LARGE",
            ]
        )
        # uploads that did decode keep their bytes too, exactly (a re-drive re-publishes them)
        for letter in failed:
            if letter["photo_id"] in hostile:
                assert letter["original_decoded"] is True
                assert letter["original_value"] == hostile[letter["photo_id"]]
                assert letter["original_key"] == b"mallory"
        raw = next(f for f in failed if f["original_value"] == b"definitely not avro")
        assert raw["original_decoded"] is False and raw["stage"] == "decode_event"
        assert raw["source"]["topic"] == settings.topics.uploaded

        # enrichment content and keys
        by_file = {d.file.path.name: d for d in delivered}
        events = {e["photo_id"]: e for e in enriched}
        chelsea = events[by_file["chelsea.jpg"].photo_id]
        assert chelsea["labels"][0]["name"] in {"Egyptian cat", "tabby", "tiger cat"}
        assert chelsea["_key"] == b"alice" and chelsea["produced_by"]["labels"]["name"]
        cats = {
            by_file[n].photo_id for n in ("chelsea.jpg", "chelsea-small.jpg", "chelsea-rotated.jpg")
        }
        links = [events[photo_id]["duplicate_of"] for photo_id in cats]
        assert sum(link is None for link in links) == 1  # the first of the three processed
        for link in filter(None, links):
            assert link["photo_id"] in cats and link["hash_distance"] <= 20
            assert link["correlation"] > 0.9 and link["similarity"] is not None
        turned = events[by_file["chelsea-rotated.jpg"].photo_id]["duplicate_of"]
        assert turned is None or turned["transform"] in {"rot90", "rot270"}  # None: it came first
        coffee, sign = by_file["coffee.jpg"].photo_id, by_file["sign.jpg"].photo_id
        assert events[coffee]["duplicate_of"] is None  # the sign is the coffee photo, edited:
        assert events[sign]["duplicate_of"]["photo_id"] == coffee  # a near-duplicate too
        assert len(events[by_file["astronaut.jpg"].photo_id]["faces"]) == 1
        assert [line["text"] for line in events[by_file["sign.jpg"].photo_id]["ocr"]] == [
            "OPEN 24 HOURS"
        ]

        # interactive queries
        status, alice = worker.get("/users/alice")
        assert status == 200 and alice["photos"] == 6 and alice["duplicates"] == 3
        assert alice["labels"].get("Egyptian cat", 0) + alice["labels"].get("tabby", 0) >= 2
        status, mallory = worker.get("/users/mallory")
        assert status == 200 and mallory["failed"] == 6 and mallory["photos"] == 0
        photo_id = by_file["coffee.jpg"].photo_id
        status, photo = worker.get(f"/users/alice/photos/{photo_id}")
        assert status == 200 and photo["status"] == "enriched"
        assert photo["summary"]["labels"][0] == "espresso" and photo["model_versions"]
        assert photo["user_id"] == "alice"
        assert worker.get(f"/users/bob/photos/{photo_id}")[0] == 404  # alice's photo, not bob's
        status, body = worker.get(f"/photos/{photo_id}")  # by photo id alone: gone
        assert status == 410 and "/users/{user_id}/photos/{photo_id}" in body["hint"]
        assert worker.get("/users/nobody")[0] == 404
        status, tags = worker.get("/users/alice/tags")
        counts = {t["name"]: t["photos"] for t in tags["tags"]}
        assert status == 200 and counts["Cat"] >= 2 and counts["Animal"] >= counts["Cat"]
        status, tagged = worker.get("/users/alice/tags/cat/photos")  # as a person types it
        assert status == 200 and tagged["tag"] == "Cat" and tagged["truncated"] is False
        assert len(tagged["photos"]) == counts["Cat"] and set(tagged["photos"]) <= cats
        assert worker.get("/users/alice/tags/Dinosaur/photos")[0] == 404
        chelsea_id = by_file["chelsea.jpg"].photo_id
        status, similar = worker.get(f"/users/alice/photos/{chelsea_id}/similar?k=3")
        assert status == 200 and similar["searched"] == alice["photos"]
        nearest = [found["photo_id"] for found in similar["similar"]]
        assert len(nearest) == 3 and chelsea_id not in nearest
        assert by_file["chelsea-small.jpg"].photo_id in nearest  # the same photo, smaller
        assert worker.get(f"/users/alice/photos/{chelsea_id}/similar?k=0")[0] == 400
        assert worker.get("/users/alice/photos/nope/similar")[0] == 404
        assert worker.get(f"/users/bob/photos/{chelsea_id}/similar")[0] == 404  # alice's photo
        # best shot: the three cats are one group, named by its first photo, best copy first
        group_ids = {events[photo_id]["best_shot"]["group_id"] for photo_id in cats}
        assert len(group_ids) == 1 and group_ids <= cats
        (group_id,) = group_ids
        assert all(link["photo_id"] == group_id for link in filter(None, links))
        status, duplicates = worker.get("/users/alice/duplicates")
        groups = {group["group_id"]: group for group in duplicates["groups"]}
        assert status == 200 and set(groups) == {group_id, coffee}
        assert groups[group_id]["count"] == 3 and groups[coffee]["count"] == 2
        ranked = [found["photo_id"] for found in groups[group_id]["photos"]]
        assert set(ranked) == cats and ranked[0] == groups[group_id]["best"]
        assert ranked[-1] == by_file["chelsea-small.jpg"].photo_id  # half size, JPEG 40
        assert groups[group_id]["reason"] and not duplicates["truncated"]
        best = [events[p]["best_shot"] for p in cats if events[p]["best_shot"]["best"]]
        assert best and all(b["group_id"] == group_id for b in best)
        assert worker.get("/users/alice/duplicates?limit=0")[0] == 400
        duplicates_before = worker.get("/users/alice/duplicates")
        stats_before = {user: worker.get(f"/users/{user}")[1] for user in ("alice", "bob")}
        tagged_before = worker.get("/users/alice/tags/Cat/photos")
        similar_before = worker.get(f"/users/alice/photos/{chelsea_id}/similar")
        metrics = worker.metrics()
        assert f'darkroom_photos_total{{outcome="enriched"}} {len(enriched)}.0' in metrics
        assert 'darkroom_dead_letters_total{reason="MALFORMED_EVENT"} 2.0' in metrics
        assert (
            "darkroom_end_to_end_seconds_count" in metrics and "darkroom_in_flight 0.0" in metrics
        )
        assert 'darkroom_stage_seconds_count{stage="enrich"}' in metrics

        # a replay of already-processed uploads emits nothing new
        publish_folder(settings, tmp_path / "photos")  # same photos again: new events, same ids
        wait_consumed(settings)
        again_enriched, again_failed = outcomes(settings)
        assert len(again_enriched) == len(enriched)
        # the corrupt samples are new *events* for photos that failed: they fail again
        assert len(again_failed) == len(failed) + 2

    # recovery: the tables come back from their changelogs
    shutil.rmtree(worker.settings.worker.data_dir)
    with running(worker):
        for user, stats in stats_before.items():  # healthy once assigned; restoring may lag
            wait_for(
                lambda u=user, st=stats: worker.get(f"/users/{u}") == (200, st),
                60,
                f"{user}'s stats restored from the changelog",
            )
        assert worker.get("/users/alice/tags/Cat/photos") == tagged_before
        wait_for(
            lambda: worker.get(f"/users/alice/photos/{chelsea_id}/similar") == similar_before,
            30,
            "similar photos from the restored embeddings",
        )
        assert worker.get("/users/alice/duplicates") == duplicates_before
