"""Interactive queries over HTTP (Faust web, 127.0.0.1 by default) and Prometheus metrics.

GET /users/{user_id} and /users/{user_id}/photos/{photo_id} are routed by Faust to the worker
that owns the user's partition of photos.uploaded. GET /photos/{photo_id} answers from this
worker only (a photo id does not say which partition holds it): 404 with a hint otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from streams.worker.app import StreamApp


def register_views(stream: StreamApp) -> None:
    """Add the pages to ``stream.app``."""
    app, tables, uploads = stream.app, stream.tables, stream.uploads

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        assigned = sorted(
            tp.partition for tp in app.consumer.assignment() if tp.topic == uploads.get_topic_name()
        )
        ready = stream.ready and not app.rebalancing
        return web.json(
            {
                "status": "ok" if ready else "starting",
                "partitions": assigned,
                "models": stream.enricher.model_versions if stream.ready else {},
            },
            status=200 if ready else 503,
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
        content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return web.bytes(generate_latest(stream.metrics.registry), content_type=content_type)

    @app.page("/users/{user_id}")
    @app.topic_route(topic=uploads, match_info="user_id")
    async def user(web: Any, request: Any, user_id: str) -> Any:
        stats = tables.user_stats.get(user_id)
        if stats is None:
            return web.json({"error": f"no photos of user {user_id!r}"}, status=404)
        return web.json({"user_id": user_id, **stats})

    @app.page("/users/{user_id}/photos/{photo_id}")
    @app.topic_route(topic=uploads, match_info="user_id")
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
