"""The HTTP API of two real workers with a token file: a query asked of the worker that does
not own the user is routed by Faust to the owner with its token, and checked there; another
user's photo is a 404 wherever it is asked; the token is in no log."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from streams.config import Settings
from tests.photos import write_photos
from tests.worker.harness import WorkerProcess, read_topic, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]
USERS = {f"user{i}": 2 for i in range(8)}  # 8 keys: each worker owns some of them


def test_two_workers_with_a_token_route_it_answer_a_users_own_photos_and_never_log_it(
    stream_settings: Settings, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(24)
    tokens = tmp_path / "api-tokens"
    tokens.write_text(f"# rotated by hand\n{token}\n")
    worker = stream_settings.worker.model_copy(update={"api_token_file": tokens})
    settings = stream_settings.model_copy(update={"worker": worker})
    first, second = WorkerProcess(settings, tmp_path, "a"), WorkerProcess(settings, tmp_path, "b")
    with running(first, second):  # ready by /healthz, which needs no token

        def split() -> set[int] | None:
            a = set(first.get("/healthz", headers={})[1].get("partitions", []))
            b = set(second.get("/healthz", headers={})[1].get("partitions", []))
            return a if a and b and not a & b and a | b == {0, 1, 2, 3} else None

        owned_by_first = wait_for(split, 60, "partitions split between two workers")
        write_photos(tmp_path / "photos", USERS, size=96)
        delivered = publish_folder(settings, tmp_path / "photos")
        wait_for_outcomes(settings, len(delivered))
        partition_of = {
            u["user_id"]: u["_partition"] for u in read_topic(settings, settings.topics.uploaded)
        }
        user = next(u for u, p in partition_of.items() if p in owned_by_first)
        photo = next(d.photo_id for d in delivered if d.user_id == user)
        elsewhere = next(d.photo_id for d in delivered if d.user_id != user)
        path = f"/users/{user}/photos/{photo}"
        wait_for(lambda: first.get(path)[0] == 200, 60, f"{user}'s photo recorded by its owner")

        # asked of the other worker: routed by Faust to the owner, the token with it
        wait_for(
            lambda: second.get(path)[1].get("user_id") == user,
            30,
            "the other worker to route the query with its token",
            detail=lambda: second.get(path),
        )
        for asked in (first, second):
            assert asked.get(path, headers={})[0] == 401
            assert asked.get(path, headers={"Authorization": f"Bearer {token}x"})[0] == 401
            # another user's photo, asked as this user: not shown, on either worker
            status, body = asked.get(f"/users/{user}/photos/{elsewhere}")
            assert status == 404 and "status" not in body
            assert asked.get(f"/photos/{photo}")[0] == 410
            assert "darkroom_photos_total" in asked.metrics()  # with the token
            assert asked.get("/metrics", headers={})[0] != 401  # open without it

    for asked in (first, second):
        log = asked.log.read_text(errors="replace")
        assert log and token not in log
