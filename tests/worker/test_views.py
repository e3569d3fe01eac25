"""The HTTP API without a broker: Faust apps serving the real views through Darkroom's web driver
on 127.0.0.1, routing between them by Faust's own router. Tokens, a user's own data only, the
cap on requests in hand, and the page that answered by photo id alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from streams.broker import free_port
from streams.config import WorkerSettings
from streams.pipeline.dedup import pack_embedding
from streams.pipeline.keys import photo_key
from streams.pipeline.similar import SimilarPhotos
from streams.worker import views
from streams.worker.access import ApiAccess
from streams.worker.app import DarkroomApp
from streams.worker.metrics import WorkerMetrics
from streams.worker.queries import QueryGate
from streams.worker.tables import Tables, user_rows

TOKEN = "t0k3n-for-the-tests-0123456789"
OTHER = "an0ther-token-the-owner-lacks-00"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    """One worker's web side: its Faust app, tables (plain dicts) and base URL."""

    app: DarkroomApp
    tables: Tables
    url: str
    gate: QueryGate


@asynccontextmanager
async def serving(
    tmp_path: Path,
    name: str,
    tokens: list[str] | None,
    owner: Callable[[], str] | None = None,
    rows: Callable[[str], Iterable[tuple[str, str]]] | None = None,
    **worker: Any,
) -> AsyncIterator[Api]:
    """A worker's views on a free port; ``owner()``: the base URL of the worker that owns
    every user (default: this one); ``rows``: the similar-photo scan (default: the table's)."""
    token_file = None
    if tokens is not None:
        token_file = tmp_path / f"{name}-tokens"
        token_file.write_text("# API tokens\n" + "".join(f"{t}\n" for t in tokens))
    settings = WorkerSettings(api_token_file=token_file, web_port=free_port(), **worker)
    app = DarkroomApp(
        f"api-{name}",
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=settings.web_port,
        autodiscover=False,
    )
    uploads = app.topic("uploads", key_type=bytes, value_type=bytes, value_serializer="raw")
    tables = Tables(*({} for _ in fields(Tables)))  # plain dicts: user_rows filters them
    url = f"http://127.0.0.1:{settings.web_port}"
    app.router.external_topic_key_store = lambda topic, key: URL(owner() if owner else url)
    similar = SimilarPhotos(
        rows or (lambda user: user_rows(tables.embeddings, user)),
        lambda user, photo: tables.embeddings.get(photo_key(user, photo)),
        1 << 20,
    )
    gate = QueryGate(settings.api_max_requests, settings.api_query_share)
    views.register_views(
        app,
        tables,
        uploads,
        WorkerMetrics(),
        views.Readiness(),
        similar,
        min_faces=3,
        access=ApiAccess.from_settings(settings),
        gate=gate,
    )
    await app.web.start_server()
    try:
        yield Api(app, tables, url, gate)
    finally:
        await app.http_client.close()
        await app.web.stop_server()
        gate.close()


@pytest.fixture(autouse=True)
def no_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    async def tracked(app: Any, topic: str) -> None:
        return None  # the real one waits for the producer's metadata (no broker here)

    monkeypatch.setattr(views, "track_topic", tracked)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, JSON body or text, headers)."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        text = await answer.text()
        try:
            body: Any = await answer.json(content_type=None)
        except ValueError:
            body = text
        return answer.status, body, answer.headers


def alice_and_bob(tables: Tables) -> None:
    tables.user_stats["alice"] = {"photos": 1}
    tables.user_stats["bob"] = {"photos": 1}
    tables.photo_state[photo_key("alice", "a1")] = {
        "user_id": "alice",
        "status": "enriched",
        "summary": {},
    }
    tables.photo_state[photo_key("bob", "b1")] = {
        "user_id": "bob",
        "status": "enriched",
        "summary": {},
    }
    tables.embeddings[photo_key("alice", "a1")] = pack_embedding([1.0, 0.0])
    tables.embeddings[photo_key("alice", "a2")] = pack_embedding([0.9, 0.1])


def test_data_pages_need_a_bearer_token_and_the_health_pages_do_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, "w", [OTHER, TOKEN]) as api:
            alice_and_bob(api.tables)
            status, body, headers = await get(f"{api.url}/users/alice")
            assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="darkroom"'
            assert "bearer token" in body["error"]
            for wrong in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN):
                status, body, headers = await get(
                    f"{api.url}/users/alice", {"Authorization": wrong}
                )
                assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in str(body)
            assert (await get(f"{api.url}/users/alice", AUTH))[:2] == (
                200,
                {"user_id": "alice", "photos": 1},
            )
            second = {"Authorization": f"bearer {OTHER}"}  # any line of the file; any case
            assert (await get(f"{api.url}/users/alice", second))[0] == 200
            for page in ("/users/alice/tags", "/users/alice/duplicates", "/", "/no/such/page"):
                assert (await get(api.url + page))[0] == 401, page
            assert (await get(f"{api.url}/metrics"))[0] == 200  # open by default
        async with serving(tmp_path, "closed", [TOKEN], api_open_health=False) as api:
            assert (await get(f"{api.url}/metrics"))[0] == 401
            assert (await get(f"{api.url}/metrics", AUTH))[0] == 200

    asyncio.run(scenario())


def test_a_routed_request_carries_the_token_to_the_owner_which_checks_it_again(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with (
            serving(tmp_path, "owner", [TOKEN]) as owner,
            serving(tmp_path, "asked", [TOKEN, OTHER], owner=lambda: owner.url) as asked,
        ):
            alice_and_bob(owner.tables)  # the asked worker holds nothing: only routing answers
            status, body, _ = await get(f"{asked.url}/users/alice", AUTH)
            assert (status, body) == (200, {"user_id": "alice", "photos": 1})
            status, body, _ = await get(f"{asked.url}/users/alice/photos/a1/similar?k=1", AUTH)
            assert status == 200 and body["similar"][0]["photo_id"] == "a2"
            assert (await get(f"{asked.url}/users/alice"))[0] == 401  # refused before routing
            # a token the asking worker takes and the owner does not: the owner's 401 comes
            # back, with the challenge Faust's router leaves out
            status, _, headers = await get(
                f"{asked.url}/users/alice", {"Authorization": f"Bearer {OTHER}"}
            )
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")

    asyncio.run(scenario())


def test_another_users_photo_is_a_404_as_a_missing_one_is(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, "w", [TOKEN]) as api:
            alice_and_bob(api.tables)
            status, body, _ = await get(f"{api.url}/users/alice/photos/a1", AUTH)
            assert status == 200 and body["user_id"] == "alice"
            for user, photo in [("bob", "a1"), ("alice", "b1"), ("mallory", "a1")]:
                status, body, _ = await get(f"{api.url}/users/{user}/photos/{photo}", AUTH)
                assert status == 404 and "status" not in body, (user, photo)
            assert (await get(f"{api.url}/users/bob/photos/a1/similar", AUTH))[0] == 404
            # the page that answered by photo id alone looks nothing up any more
            status, body, _ = await get(f"{api.url}/photos/a1", AUTH)
            assert status == 410 and "/users/{user_id}/photos/{photo_id}" in body["hint"]
            assert "alice" not in str(body)

    asyncio.run(scenario())


def test_requests_beyond_the_cap_are_429_with_retry_after_and_served_again_after(
    tmp_path: Path,
) -> None:
    started, release = threading.Semaphore(0), threading.Event()
    embedding = pack_embedding([1.0, 0.0])

    def slow_rows(user: str) -> list[tuple[str, str]]:
        started.release()
        assert release.wait(20)
        return [("p1", embedding), ("p2", embedding)]

    async def scenario() -> None:
        async with serving(
            tmp_path, "w", [TOKEN], rows=slow_rows, api_max_requests=2, api_query_share=1
        ) as api:
            # two similar-photo queries in hand: one in the query thread, one waiting for it
            held = [
                asyncio.create_task(get(f"{api.url}/users/u{i}/photos/p1/similar", AUTH))
                for i in range(2)
            ]
            assert await asyncio.to_thread(started.acquire, True, 10)
            await wait_until(lambda: api.gate.in_hand == 2)
            status, body, headers = await asyncio.wait_for(get(f"{api.url}/users/alice", AUTH), 5)
            assert status == 429 and headers["Retry-After"] == "1" and "error" in body
            assert (await get(f"{api.url}/metrics"))[0] == 200  # the health pages are not held
            release.set()
            assert [status for status, _, _ in await asyncio.gather(*held)] == [200, 200]
            assert api.gate.in_hand == 0
            assert (await get(f"{api.url}/users/alice", AUTH))[0] == 404  # served (no such user)

    asyncio.run(scenario())


async def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_healthz_waits_out_a_short_broker_blip_but_not_a_long_one() -> None:
    readiness = views.Readiness(broker_grace_s=10.0)
    assert not readiness.broker_lost(known=False, now=100.0)  # just lost: a blip so far
    assert not readiness.broker_lost(known=False, now=109.0)
    assert readiness.broker_lost(known=False, now=110.0)  # ten seconds without it
    assert not readiness.broker_lost(known=True, now=111.0)  # back
    assert not readiness.broker_lost(known=False, now=112.0)  # lost again: the grace anew
