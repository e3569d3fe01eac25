"""Slow clients: a deadline for each request head, and idle kept-alive connections closed, on
Darkroom's web driver (streams.worker.web) serving a small aiohttp app on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from streams.broker import free_port
from streams.worker.app import DarkroomApp
from streams.worker.web import DeadlineRunner, WebTimeouts

HEAD = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"


@asynccontextmanager
async def serving(timeouts: WebTimeouts) -> AsyncIterator[int]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)  # longer than the head's deadline: a handler is never cut
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow", slow)
    runner = DeadlineRunner(app, timeouts)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    """True if the server closes the connection within ``timeout_s`` (what it sent is read)."""
    try:
        async with asyncio.timeout(timeout_s):
            while await reader.read(4096):
                pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def trickle(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A slow client: a request line, then a header byte every 0.1 s, never the end."""
    writer.write(b"GET /ok HTTP/1.1\r\n")
    while not stop.is_set():
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(0.1)


def test_clients_trickling_their_headers_are_closed_after_the_header_deadline() -> None:
    async def scenario() -> None:
        # a keep-alive timeout far away: only the head's deadline can close them
        async with serving(WebTimeouts(header_s=0.5, keepalive_s=60)) as port:
            clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
            stop = asyncio.Event()
            tricklers = [asyncio.create_task(trickle(w, stop)) for _, w in clients]
            started = asyncio.get_running_loop().time()
            closed = await asyncio.gather(*(closed_within(r, 5.0) for r, _ in clients))
            took = asyncio.get_running_loop().time() - started
            stop.set()
            await asyncio.gather(*tricklers)
            assert all(closed), f"{closed.count(False)} of 50 slow clients still connected"
            assert took < 3.0
            # a client that does send its request in time is served, on a fresh connection
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEAD)
            assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
            writer.close()

    asyncio.run(scenario())


def test_a_silent_connection_is_closed_after_the_header_deadline() -> None:
    async def scenario() -> None:
        async with serving(WebTimeouts(header_s=0.5, keepalive_s=60)) as port:
            reader, _writer = await asyncio.open_connection("127.0.0.1", port)
            assert await closed_within(reader, 3.0)

    asyncio.run(scenario())


def test_a_kept_alive_connection_serves_again_then_closes_when_idle() -> None:
    async def scenario() -> None:
        async with serving(WebTimeouts(header_s=60, keepalive_s=0.5)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(2):  # two requests on one connection, each one in time
                writer.write(HEAD)
                assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
            assert await closed_within(reader, 3.0)  # then idle: closed
            writer.close()

    asyncio.run(scenario())


def test_a_handler_slower_than_the_header_deadline_still_answers() -> None:
    async def scenario() -> None:
        async with serving(WebTimeouts(header_s=0.2, keepalive_s=60)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            async with asyncio.timeout(5):
                assert (await reader.readuntil(b"slow")).startswith(b"HTTP/1.1 200")
            writer.write(HEAD[:10])  # then a next request starts: its head has a deadline
            assert await closed_within(reader, 3.0)

    asyncio.run(scenario())


def test_the_worker_app_uses_the_deadline_runner_with_its_settings() -> None:
    app = DarkroomApp("web-driver-test", autodiscover=False)
    app.web_timeouts = WebTimeouts(header_s=3.0, keepalive_s=7.0)
    runner = app.web._runner
    assert isinstance(runner, DeadlineRunner) and runner.timeouts == app.web_timeouts
