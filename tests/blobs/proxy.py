"""A TCP proxy in front of the local S3 server that can stop answering, request by request.

A store that "stops answering" accepts the connection and the request, then sends nothing: the
client waits for its read timeout. That is what an overloaded or partitioned store looks like,
and what a closed port (an instant refusal) does not test. Only reads pass through this proxy
(uploads go to the server itself).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from streams.broker import free_port

Rule = Callable[[bytes], bool]  # the request's first line (b"GET /bucket/key HTTP/1.1") -> yes?


class FreezingProxy:
    """127.0.0.1:``port`` -> 127.0.0.1:``target_port``.

    A request whose first line ``hang`` matches is never forwarded: its connection stays open
    and silent. With ``gate`` set, every request waits until ``gate`` requests are waiting at
    once, then all go on: only concurrent clients get through it. ``delay_s`` holds every
    request that long first (a store further away than loopback; benchmarks/blob_fetch.py).
    """

    def __init__(
        self,
        target_port: int,
        hang: Rule = lambda _line: False,
        gate: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        self.target_port = target_port
        self.hang = hang
        self.delay_s = delay_s
        self.port = free_port()
        self.requests: list[bytes] = []  # first lines of every request seen
        self.hung: list[bytes] = []  # those left unanswered
        self.response_bytes = 0  # bytes the server sent back through the proxy
        self._gate = threading.Barrier(gate) if gate > 1 else None
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        """The URL clients use instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._server.close()
        if self._gate is not None:
            self._gate.abort()
        with self._lock:
            for sock in self._open:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward the client's bytes, looking at the start of each request: GETs and HEADs
        have no body and HTTP clients do not pipeline, so a chunk that starts with a method
        starts a request."""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                upstream.close()
                return
            if data.startswith((b"GET ", b"HEAD ")):
                line = data.split(b"\r\n", 1)[0]
                with self._lock:
                    self.requests.append(line)
                if self.hang(line):
                    with self._lock:
                        self.hung.append(line)
                    return  # never forwarded, never answered: the client times out
                if self.delay_s:
                    time.sleep(self.delay_s)
                if self._gate is not None:
                    try:
                        self._gate.wait(timeout=30)
                    except threading.BrokenBarrierError:
                        return
            try:
                upstream.sendall(data)
            except OSError:
                return

    def _responses(self, upstream: socket.socket, client: socket.socket) -> None:
        while True:
            try:
                data = upstream.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.response_bytes += len(data)
                client.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
