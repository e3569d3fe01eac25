"""Faust's aiohttp web driver with a deadline for request heads and a keep-alive timeout.

3,000 clients that sent their request headers a byte at a time were all still connected 80 s
later: Faust builds aiohttp's runner with its defaults, a 3630 s keep-alive timeout and no
deadline for a request's head. Here a connection must deliver each request head in full within
``header_s`` of opening, or of the first byte of that request on a kept-alive connection, and an
idle kept-alive connection is closed after ``keepalive_s`` (above the 15 s for which aiohttp's
client, Faust's router among them, keeps a connection: the client lets go first).

aiohttp has no hook for the head's deadline, so the connection handler is a subclass: it arms a
timer when a head begins and disarms it when aiohttp hands the parsed request to its handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server
from faust.web.drivers import aiohttp as faust_aiohttp


@dataclass(frozen=True)
class WebTimeouts:
    """Seconds a request head may take to arrive, and an idle connection may stay open."""

    header_s: float = 10.0
    keepalive_s: float = 20.0


class _DeadlineHandler(RequestHandler):
    """One connection: closed when a request head is not complete ``header_s`` after it began."""

    def __init__(self, manager: Server, *, header_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_s = header_s
        self._deadline: asyncio.TimerHandle | None = None
        self._serving = False  # a request is being handled (its body may still be arriving)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte counts too

    def data_received(self, data: bytes) -> None:
        if data and not self._serving and self._deadline is None:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    async def _handle_request(
        self,
        request: BaseRequest,
        start_time: float | None,
        request_handler: Callable[[BaseRequest], Awaitable[StreamResponse]],
    ) -> tuple[StreamResponse, bool]:
        self._disarm()  # the head is complete: aiohttp parsed it into a request
        self._serving = True
        try:
            return await super()._handle_request(request, start_time, request_handler)
        finally:
            self._serving = False

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(self._header_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.force_close()


class _DeadlineServer(Server):
    """aiohttp's server, handing each connection a ``_DeadlineHandler``."""

    header_s = WebTimeouts.header_s

    def __call__(self) -> RequestHandler:
        return _DeadlineHandler(self, loop=self._loop, header_s=self.header_s, **self._kwargs)


class DeadlineRunner(web.AppRunner):
    """An AppRunner whose connections have both timeouts."""

    def __init__(self, app: web.Application, timeouts: WebTimeouts, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=timeouts.keepalive_s, **kwargs)
        self.timeouts = timeouts

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # aiohttp builds a plain Server (Application._make_handler); the subclass changes only
        # which handler each new connection gets
        server.__class__ = _DeadlineServer
        assert isinstance(server, _DeadlineServer)
        server.header_s = self.timeouts.header_s
        return server


class Web(faust_aiohttp.Web):
    """Faust's aiohttp driver with ``app.web_timeouts`` (a WebTimeouts; the defaults without)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        timeouts = getattr(app, "web_timeouts", None) or WebTimeouts()
        self._runner = DeadlineRunner(self.web_app, timeouts, access_log=None)
