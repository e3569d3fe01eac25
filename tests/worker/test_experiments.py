"""A model experiment end to end on the real broker: shadow and canary in the worker, the same
split on a replay, metrics, the report's verdicts, promotion and the backfill it prints."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings, settings_env
from streams.models.repository import ModelRepository
from streams.models.rollout import in_rollout
from tests.cli.runner import darkroom, json_lines
from tests.photos import write_photos
from tests.variants import variant_manifest, with_variants
from tests.worker.harness import WorkerProcess, read_topic, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

# the experiment is what is tested, not the broker: tansu (the failover tests cover Kafka)
pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]
USERS = {f"user{i}": 3 for i in range(8)}  # 24 photos


def with_experiments(
    stream_settings: Settings,
    repository: ModelRepository,
    folder: Path,
    *variants: Any,
    **engine: Any,
) -> tuple[Settings, ModelRepository]:
    """Settings whose model repository holds mobilenet_v2 and ``variants``, all of them on."""
    repo = with_variants(folder / "repo", repository, *variants, only=("mobilenet_v2",))
    paths = stream_settings.paths.model_copy(
        update={"models": repo.root, "model_cache": repo.cache}
    )
    options = stream_settings.engine.model_copy(update={"variants": "all", **engine})
    return stream_settings.model_copy(update={"paths": paths, "engine": options}), repo


def latest_by_photo(events: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    latest: dict[str, dict[str, object]] = {}
    for event in events:
        latest[str(event["photo_id"])] = event  # one partition per user: in order per photo
    return latest


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_shadow_canary_report_promote_and_backfill(
    stream_settings: Settings, repository: ModelRepository, tmp_path: Path
) -> None:
    settings, repo = with_experiments(
        stream_settings,
        repository,
        tmp_path,
        # fed BGR instead of RGB: same weights, measurably different answers
        variant_manifest(
            repository,
            "mobilenet_v2",
            "bgr",
            promote_when={"embedding_cosine": ">= 0.999"},
            input_color="BGR",
        ),
        # the same graph, as a canary for half the users: agrees exactly
        variant_manifest(
            repository,
            "mobilenet_v2",
            "twin",
            mode="canary",
            percent=50,
            promote_when={"embedding_cosine": ">= 0.99", "error_rate": "<= 0.5"},
        ),
    )
    env = settings_env(settings)
    topic = settings.topics.shadow
    twin = repo.get("twin")
    canary_users = {u for u in USERS if in_rollout(twin, u)}
    assert canary_users and canary_users != set(USERS)  # both arms have users

    worker = WorkerProcess(settings, tmp_path, "w")
    with running(worker):
        write_photos(tmp_path / "photos", USERS, size=256)
        delivered = publish_folder(settings, tmp_path / "photos")
        enriched, failed = wait_for_outcomes(settings, len(delivered))
        shadows = wait_for(
            lambda: (
                (found := read_topic(settings, settings.topics.shadow))
                and len(found) >= len(delivered) + 3 * len(canary_users)
                and found
            ),
            60,
            "a shadow result per photo and variant",
        )
        metrics = worker.metrics()
        _, health = worker.get("/healthz")
    assert health["variants"] == {"bgr@test-bgr": "shadow 100%", "twin@test-twin": "canary 50%"}
    assert not failed, failed[0]["detail"]

    # canary users are served by the variant, the others by production
    for event in enriched:
        server = event["produced_by"]["labels"]["name"]  # type: ignore[index]
        assert server == ("twin" if event["user_id"] in canary_users else "mobilenet_v2"), event
    by_variant = Counter((s["variant"]["name"], s["mode"]) for s in shadows)
    assert by_variant == {("bgr", "shadow"): 24, ("twin", "canary"): 3 * len(canary_users)}
    assert all(
        s["agreement"]["embedding_cosine"] > 0.9999
        for s in shadows
        if s["variant"]["name"] == "twin"
    )
    assert (
        min(s["agreement"]["embedding_cosine"] for s in shadows if s["variant"]["name"] == "bgr")
        < 0.99
    )

    # Prometheus: per {model, variant}, on the same photos
    labels = 'model="mobilenet_v2",variant="bgr"'
    assert f'darkroom_variant_agreement_count{{figure="embedding_cosine",{labels}}} 24.0' in metrics
    production = 'model="mobilenet_v2",side="production",variant="bgr"'
    assert f"darkroom_variant_inference_seconds_count{{{production}}} 24.0" in metrics

    # a replay makes the same split: every photo again, the same users in the canary
    replayed = darkroom(
        "replay", "--topic", settings.topics.uploaded, "--reprocess", "--force", env=env
    )
    assert replayed.exit_code == 0, replayed.output
    first = Counter((s["variant"]["name"], s["user_id"]) for s in shadows)
    both = Counter((s["variant"]["name"], s["user_id"]) for s in read_topic(settings, topic))
    assert both == {arm: 2 * n for arm, n in first.items()}

    # the report: twin agrees (promote), bgr does not (reject)
    report = darkroom("experiments", "report", "--json", env=env)
    assert report.exit_code == 0, report.output
    verdicts = {r["variant"]: r for r in json_lines(report.stdout)}
    assert verdicts["twin"]["verdict"] == "promote", verdicts["twin"]
    assert verdicts["bgr"]["verdict"] == "reject", verdicts["bgr"]
    assert verdicts["bgr"]["photos"] == 48 and verdicts["bgr"]["modes"] == {"shadow": 48}
    table = darkroom("experiments", "report", "--variant", "bgr", env=env)
    assert "verdict: reject" in table.stdout and "embedding_cosine" in table.stdout

    # promotion follows the verdict
    refused = darkroom("models", "promote", "bgr", env=env)
    assert refused.exit_code == 1 and "verdict is reject" in refused.stderr
    promoted = darkroom("models", "promote", "twin", env=env)
    assert promoted.exit_code == 0, promoted.output
    backfill = f"darkroom replay --topic {settings.topics.uploaded} --reprocess --stale-models"
    assert backfill in promoted.stdout
    after = ModelRepository(repo.root, repo.cache)
    assert [m.name for m in after.production()] == ["twin"]
    assert after.get("bgr").variant_of == "twin"

    # the backfill it prints: the photos production served get twin; canary photos are current
    result = darkroom(*backfill.split()[1:], env=env)
    assert result.exit_code == 0, result.output
    events = read_topic(settings, settings.topics.enriched)
    runs = Counter(e["user_id"] for e in events)  # the worker, the replay, then the backfill
    assert runs == {u: 3 * (2 if u in canary_users else 3) for u in USERS}
    latest = latest_by_photo(events)
    assert {e["produced_by"]["labels"]["name"] for e in latest.values()} == {"twin"}  # type: ignore[index]


@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_failing_and_unreadable_experiments_are_switched_off_by_the_worker_and_said(
    stream_settings: Settings, repository: ModelRepository, tmp_path: Path
) -> None:
    settings, _repo = with_experiments(
        stream_settings,
        repository,
        tmp_path,
        # fails on every photo (a top_k that is no number)
        variant_manifest(
            repository, "mobilenet_v2", "broken", mode="canary", percent=100, params={"top_k": "x"}
        ),
        variant_min_photos=4,
    )
    # and an experiment whose manifest no longer parses: disabled alone, the worker starts
    unreadable = settings.paths.models / "unreadable"
    unreadable.mkdir()
    (unreadable / "model.toml").write_text('name = "unreadable"\nvariant_of = "mobilenet_v2"\n[[')
    worker = WorkerProcess(settings, tmp_path, "w")
    with running(worker):
        write_photos(tmp_path / "photos", {"user0": 6}, size=128)
        delivered = publish_folder(settings, tmp_path / "photos")
        enriched, failed = wait_for_outcomes(settings, len(delivered))
        assert len(enriched) == 6 and not failed  # production served every photo
        status, health = worker.get("/healthz")
        assert status == 200, health
        off = health["variants_switched_off"]
        assert off["broken"].startswith("failed on ") and off["broken"].endswith(" photos")
        assert off["unreadable"].startswith("broken manifest: ")
        metrics = worker.metrics()
        assert 'darkroom_variant_switched_off{variant="broken"} 1.0' in metrics
        assert 'darkroom_variant_switched_off{variant="unreadable"} 1.0' in metrics
    log = worker.log.read_text()
    assert "variant switched off; production serves" in log
    assert "experiment disabled: its manifest is broken" in log
