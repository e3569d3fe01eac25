"""Interactive queries over HTTP (Faust web, 127.0.0.1 by default) and Prometheus metrics.

GET /healthz is 200 only when the worker is ready: models loaded, partitions assigned and its
tables recovered (Faust's on_rebalance_complete), no rebalance under way, and its consumer knows
the group's coordinator (lost with the broker, or with the group's rights); 503 otherwise.
GET /users/{user_id} and everything under it (photos, similar photos, duplicates, tags, people)
is routed by Faust to the worker that owns the user's partition of photos.uploaded, and answers
from that user's data only: another user's photo is a 404, as a missing one is. GET
/photos/{photo_id} is gone (410 with a hint): it answered by photo id alone, any user's photo.

Every page but /healthz and /metrics asks for a bearer token when a token file is set
(streams.worker.access); data requests are bounded in number and take turns so as to use at
most a stated share of one core, their scans in one thread of their own (streams.worker.queries).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial, wraps
from typing import Any

import faust
from faust.web.drivers import aiohttp as aiohttp_driver
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.pipeline import bestshot, people_state
from streams.pipeline.keys import entry_prefix, photo_key, user_prefix
from streams.pipeline.similar import SimilarPhotos
from streams.worker.access import ApiAccess, guard
from streams.worker.layouts import people_at
from streams.worker.metrics import WorkerMetrics
from streams.worker.queries import QueryGate
from streams.worker.state import PHOTOS_LISTED
from streams.worker.tables import Tables, newest, rows
from streams.worker.transport import group_coordinator_known, track_topic

View = Callable[..., Awaitable[Any]]
DEFAULT_SIMILAR, MAX_SIMILAR = 20, 200  # photos a similar-photos answer lists
DEFAULT_GROUPS, MAX_GROUPS = 100, 1000  # groups a duplicates answer lists


@dataclass
class Readiness:
    """What /healthz reports; the app sets each part when it happens."""

    models: dict[str, str] = field(default_factory=dict)  # empty until the engine is loaded
    variants: dict[str, str] = field(default_factory=dict)  # name@version -> "shadow 100%"
    # name -> why: the engine's own record (streams.engine.variants.VariantWatch), shared
    switched_off: dict[str, str] = field(default_factory=dict)
    recovered: bool = False  # assignment received and tables recovered at least once
    broker_grace_s: float = 10.0  # DARKROOM_WORKER_BROKER_GRACE_S
    coordinator_lost_at: float | None = None  # monotonic time it was first seen missing

    def broker_lost(self, known: bool, now: float) -> bool:
        """Whether the group's coordinator has been unknown for longer than the grace: a
        broker restart or a leader moving is not "not ready", five minutes without it is."""
        if known:
            self.coordinator_lost_at = None
            return False
        if self.coordinator_lost_at is None:
            self.coordinator_lost_at = now
        return now - self.coordinator_lost_at >= self.broker_grace_s


def register_views(
    app: faust.App,
    tables: Tables,
    uploads: Any,
    metrics: WorkerMetrics,
    readiness: Readiness,
    similar: SimilarPhotos,
    min_faces: int,
    access: ApiAccess,
    gate: QueryGate,
) -> None:
    """Add the pages to ``app``; ``min_faces``: the faces that make a cluster a person;
    ``access``: who may ask; ``gate``: requests in hand and the query thread."""
    driver = app.web
    assert isinstance(driver, aiohttp_driver.Web)  # streams.worker.web's, in the worker
    driver.web_app.middlewares.append(guard(access, gate))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        assigned = sorted(
            tp.partition for tp in app.consumer.assignment() if tp.topic == uploads.get_topic_name()
        )
        waiting = [
            what
            for what, missing in (
                ("models", not readiness.models),
                ("assignment and table recovery", not readiness.recovered),
                ("rebalance", app.rebalancing),
                # after the first recovery: the broker (or the group's rights) lost since
                (
                    "the group coordinator (is the broker reachable?)",
                    readiness.recovered
                    and readiness.broker_lost(group_coordinator_known(app), time.monotonic()),
                ),
            )
            if missing
        ]
        return web.json(
            {
                "status": "starting" if waiting else "ok",
                "waiting_for": waiting,
                "partitions": assigned,
                "models": readiness.models,
                "variants": readiness.variants,
                "variants_switched_off": readiness.switched_off,
            },
            status=503 if waiting else 200,
        )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
        content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return web.bytes(generate_latest(metrics.registry), content_type=content_type)

    def routed_by_user(view: View) -> View:
        """Faust's routing to the worker that owns the user's partition of the uploads."""
        routed = app.topic_route(topic=uploads, match_info="user_id")(view)

        @wraps(view)
        async def get(*args: Any, **kwargs: Any) -> Any:
            await track_topic(app, uploads.get_topic_name())  # see streams.worker.transport
            return await routed(*args, **kwargs)

        return get

    @app.page("/users/{user_id}")
    @routed_by_user
    async def user(web: Any, request: Any, user_id: str) -> Any:
        stats = tables.user_stats.get(user_id)
        if stats is None:
            return web.json({"error": f"no photos of user {user_id!r}"}, status=404)
        return web.json({"user_id": user_id, **stats})

    @app.page("/users/{user_id}/photos/{photo_id}")
    @routed_by_user
    async def user_photo(web: Any, request: Any, user_id: str, photo_id: str) -> Any:
        found = owned_photo(tables, user_id, photo_id)
        if found is None:
            return web.json({"error": f"no photo {photo_id!r} for this user"}, status=404)
        return web.json({"photo_id": photo_id, **found})

    @app.page("/users/{user_id}/photos/{photo_id}/similar")
    @routed_by_user
    async def similar_photos(web: Any, request: Any, user_id: str, photo_id: str) -> Any:
        k = _whole(request.query.get("k"), DEFAULT_SIMILAR)
        if not 1 <= k <= MAX_SIMILAR:
            error = f"k must be a whole number from 1 to {MAX_SIMILAR}"
            return web.json({"error": error}, status=400)
        started = time.perf_counter()
        try:  # in the query thread: the first query of a user reads all their rows
            found, searched = await gate.run(lambda: similar.similar(user_id, photo_id, k))
        except KeyError:
            return web.json(
                {"error": f"no photo {photo_id!r} with an embedding for user {user_id!r}"},
                status=404,
            )
        metrics.similar_seconds.observe(time.perf_counter() - started)
        return web.json(
            {
                "user_id": user_id,
                "photo_id": photo_id,
                "searched": searched,  # the user's photos with an embedding, this one included
                "similar": found,  # best first; score: the embeddings' cosine
            }
        )

    @app.page("/users/{user_id}/duplicates")
    @routed_by_user
    async def user_duplicates(web: Any, request: Any, user_id: str) -> Any:
        limit = _whole(request.query.get("limit"), DEFAULT_GROUPS)
        if not 1 <= limit <= MAX_GROUPS:
            error = f"limit must be a whole number from 1 to {MAX_GROUPS}"
            return web.json({"error": error}, status=400)

        def groups() -> list[dict[str, Any]]:  # a range scan of the user's groups' rows
            listed = bestshot.groups_of(rows(tables.dup_groups, user_prefix(user_id)))
            found = [bestshot.describe(g, group, PHOTOS_LISTED) for g, group in listed.items()]
            return sorted(found, key=lambda g: (-g["count"], g["group_id"]))

        found = await gate.run(groups)
        return web.json(
            {
                "user_id": user_id,
                "groups": found[:limit],  # largest first; in each, the best copy first
                "truncated": len(found) > limit,
            }
        )

    @app.page("/users/{user_id}/tags")
    @routed_by_user
    async def user_tags(web: Any, request: Any, user_id: str) -> Any:
        stats = tables.user_stats.get(user_id)
        if stats is None:
            return web.json({"error": f"no photos of user {user_id!r}"}, status=404)
        counts = sorted((stats.get("tags") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        return web.json({"user_id": user_id, "tags": [{"name": n, "photos": c} for n, c in counts]})

    @app.page("/users/{user_id}/tags/{tag}/photos")
    @routed_by_user
    async def user_tag_photos(web: Any, request: Any, user_id: str, tag: str) -> Any:
        counts = (tables.user_stats.get(user_id) or {}).get("tags") or {}
        name = next((n for n in counts if n.lower() == tag.lower()), None)  # "cat" finds Cat
        if name is None:
            return web.json({"error": f"user {user_id!r} has no photo tagged {tag!r}"}, status=404)
        prefix = entry_prefix(user_id, name)
        photos, held = await gate.run(partial(newest, tables.tag_photos, prefix, PHOTOS_LISTED))
        return web.json(
            {
                "user_id": user_id,
                "tag": name,
                "count": counts[name],
                "photos": photos,  # newest first
                "truncated": held > len(photos),  # only the newest PHOTOS_LISTED
            }
        )

    @app.page("/users/{user_id}/people")
    @routed_by_user
    async def user_people(web: Any, request: Any, user_id: str) -> Any:
        found = await gate.run(partial(people_at, tables, user_id))
        listed = people_state.persons(found, min_faces) if found is not None else []
        return web.json({"user_id": user_id, "people": listed})

    @app.page("/users/{user_id}/people/{person_id}/photos")
    @routed_by_user
    async def person_photos(web: Any, request: Any, user_id: str, person_id: str) -> Any:
        found = await gate.run(partial(people_at, tables, user_id))
        resolved = people_state.resolve(found, person_id) if found is not None else person_id
        cluster = (found or {}).get("clusters", {}).get(resolved)
        if cluster is None or cluster["count"] < min_faces:
            return web.json({"error": f"user {user_id!r} has no person {person_id!r}"}, status=404)
        prefix = entry_prefix(user_id, resolved)
        found_photos = partial(newest, tables.person_photos, prefix, PHOTOS_LISTED)
        photos, held = await gate.run(found_photos)
        return web.json(
            {
                "user_id": user_id,
                "person_id": resolved,  # another id when the one asked for was merged into it
                "faces": cluster["count"],
                "photos": photos,  # newest first
                "truncated": held > len(photos),  # only the newest PHOTOS_LISTED
            }
        )

    @app.page("/photos/{photo_id}")
    async def photo(web: Any, request: Any, photo_id: str) -> Any:
        # it answered by photo id alone, with any user's photo: nothing is looked up now
        return web.json(
            {
                "error": "GET /photos/{photo_id} is gone: it did not know whose photo it was",
                "hint": "ask GET /users/{user_id}/photos/{photo_id}, routed to the owner",
            },
            status=410,
        )


def owned_photo(tables: Tables, user_id: str, photo_id: str) -> dict[str, Any] | None:
    """``photo_id``'s state if it is ``user_id``'s photo (photo_state is keyed by both), else
    None."""
    found: dict[str, Any] | None = tables.photo_state.get(photo_key(user_id, photo_id))
    return found


def _whole(text: str | None, default: int) -> int:
    """A query parameter as a whole number (0 when it is not one, which every range refuses)."""
    try:
        return default if text is None else int(text)
    except ValueError:
        return 0
