"""Who may ask the worker's HTTP API: bearer tokens read from a file, checked on every data page.

Why a bearer token rather than mutual TLS: Faust routes ``/users/{user_id}/...`` to the worker
that owns the user's partition by asking that worker again with aiohttp, over plain HTTP, at
its advertised web host, with the request's own headers (faust/app/router.py). A token in the
Authorization header arrives at the owner unchanged and is checked there again. mTLS would need
certificates on every hop and a client certificate in Faust's router session, which Faust gives
no setting for.

The token file holds one token a line (blank lines and ``#`` comments are skipped), so tokens
rotate without a restart: add the new one to every worker's file, move the clients, remove the
old one. The file is read again when it changes (looked at once a second at most). A token is
compared in constant time (``hmac.compare_digest``) with each one in the file, and never logged
or put in an error message: those name the file and the line.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from streams.errors import UsageError
from streams.logs import get_logger
from streams.worker.queries import RETRY_AFTER_S, QueryGate

if TYPE_CHECKING:
    from streams.config import WorkerSettings

log = get_logger("darkroom.worker.api")

TOKEN_MIN_CHARS = 16
TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750's b64token: fits a header as is
RELOAD_EVERY_S = 1.0
HEALTH_PAGES = frozenset({"/healthz", "/metrics"})
CHALLENGE = 'Bearer realm="darkroom"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiConfigError(UsageError):
    """API settings that would expose the data, or a token file that cannot be used."""


def is_loopback(host: str) -> bool:
    """True for a host only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another name: it may resolve to anything
        return False


def read_tokens(path: Path) -> tuple[bytes, ...]:
    """The tokens in ``path``; ApiConfigError naming the file and line, never the content."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ApiConfigError(f"cannot read the API token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ApiConfigError(f"the API token file {path} is not UTF-8 text") from None
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if len(token) < TOKEN_MIN_CHARS or not TOKEN_CHARS.fullmatch(token):
            raise ApiConfigError(
                f"the API token file {path}, line {number}: a token must be at least "
                f"{TOKEN_MIN_CHARS} characters of A-Z a-z 0-9 - . _ ~ + / (then = only)"
            )
        tokens.append(token.encode())
    if not tokens:
        raise ApiConfigError(f"the API token file {path} holds no token (one a line)")
    return tuple(tokens)


class TokenFile:
    """The tokens of a file, read again when it changes; a bad new version keeps the old."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._tokens = read_tokens(path)  # ApiConfigError at start: the worker does not start
        self._looked = time.monotonic()

    def accepts(self, given: str) -> bool:
        """True if ``given`` is one of the tokens (every one is compared, in constant time)."""
        self._reload()
        candidate = given.encode()
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(candidate, token)
        return found

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _reload(self) -> None:
        now = time.monotonic()
        if now - self._looked < RELOAD_EVERY_S:
            return
        self._looked = now
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._tokens = read_tokens(self.path)
        except ApiConfigError as exc:
            log.warning("API tokens not reloaded; the previous ones still hold", error=str(exc))
            return
        log.info("API tokens reloaded", file=str(self.path), tokens=len(self._tokens))


class ApiAccess:
    """The tokens (None: no token asked) and the pages served without one."""

    def __init__(self, tokens: TokenFile | None, open_pages: frozenset[str]) -> None:
        self.tokens, self.open_pages = tokens, open_pages

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> ApiAccess:
        """Refuses (ApiConfigError) a web host beyond loopback with no token file, unless
        ``api_allow_anonymous`` says so."""
        tokens = None
        if worker.api_token_file is not None:
            tokens = TokenFile(worker.api_token_file)
        elif not is_loopback(worker.web_host) and not worker.api_allow_anonymous:
            raise ApiConfigError(
                f"the HTTP API on {worker.web_host} would serve every user's data to anyone: "
                "set DARKROOM_WORKER_API_TOKEN_FILE (or DARKROOM_WORKER_API_ALLOW_ANONYMOUS=true)"
            )
        return cls(tokens, HEALTH_PAGES if worker.api_open_health else frozenset())

    def check(self, authorization: str | None) -> str | None:
        """None if the request may pass, else why not (for the 401's body)."""
        if self.tokens is None:
            return None
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "a bearer token is required (Authorization: Bearer <token>)"
        if not self.tokens.accepts(given.strip()):
            return "the bearer token is not accepted"
        return None


def guard(access: ApiAccess, gate: QueryGate) -> Callable[..., Awaitable[web.StreamResponse]]:
    """aiohttp middleware: the token, then a place among the requests in hand (429 beyond)
    and the request's turn (streams.worker.queries)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in access.open_pages:
            return await handler(request)
        refused = access.check(request.headers.get("Authorization"))
        if refused is not None:
            challenge = CHALLENGE
            if "Authorization" in request.headers:
                challenge += ', error="invalid_token"'
            return web.json_response(
                {"error": refused}, status=401, headers={"WWW-Authenticate": challenge}
            )
        if not gate.enter():
            return _too_many()
        try:
            await gate.turn()
            response = await handler(request)
        finally:
            gate.leave()
        # Faust's router answers a routed request with the owner's status and body only
        if response.status == 401 and "WWW-Authenticate" not in response.headers:
            response.headers["WWW-Authenticate"] = CHALLENGE
        if response.status == 429 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    return middleware


def _too_many() -> web.Response:
    return web.json_response(
        {"error": "too many requests in hand; try again later"},
        status=429,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
