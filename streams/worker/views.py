"""Interactive queries over HTTP (Faust web, 127.0.0.1 by default) and Prometheus metrics.

GET /healthz is 200 only when the worker is ready: models loaded, partitions assigned and its
tables recovered (Faust's on_rebalance_complete), and no rebalance under way; 503 before.
GET /users/{user_id} and /users/{user_id}/photos/{photo_id} are routed by Faust to the worker
that owns the user's partition of photos.uploaded. GET /photos/{photo_id} answers from this
worker only (a photo id does not say which partition holds it): 404 with a hint otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.worker.metrics import WorkerMetrics
from streams.worker.tables import Tables
from streams.worker.transport import track_topic

View = Callable[..., Awaitable[Any]]


@dataclass
class Readiness:
    """What /healthz reports; the app sets each part when it happens."""

    models: dict[str, str] = field(default_factory=dict)  # empty until the engine is loaded
    variants: dict[str, str] = field(default_factory=dict)  # name@version -> "shadow 100%"
    recovered: bool = False  # assignment received and tables recovered at least once


def register_views(
    app: faust.App, tables: Tables, uploads: Any, metrics: WorkerMetrics, readiness: Readiness
) -> None:
    """Add the pages to ``app``."""

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
        return _photo(web, tables.photo_state.get(photo_id), photo_id, routed=True)

    @app.page("/photos/{photo_id}")
    async def photo(web: Any, request: Any, photo_id: str) -> Any:
        return _photo(web, tables.photo_state.get(photo_id), photo_id, routed=False)


def _photo(web: Any, found: dict[str, Any] | None, photo_id: str, routed: bool) -> Any:
    if found is not None:
        return web.json({"photo_id": photo_id, **found})
    if routed:
        return web.json({"error": f"no photo {photo_id!r} for this user"}, status=404)
    return web.json(
        {
            "error": f"photo {photo_id!r} is not on this worker",
            "hint": "a photo lives with its user's partition: ask "
            "GET /users/{user_id}/photos/{photo_id}, which is routed to the owner",
        },
        status=404,
    )
