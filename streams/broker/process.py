"""What both local brokers share: their status and error types, pid files, ports, processes.

Every broker this package starts is a separate process in a session of its own, recorded in a
JSON pid file in its state folder. Before anything signals a recorded pid, the caller checks its
command line (``cmdline``) against what it started, so a stale pid file never kills a stranger.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.errors import OperationError


class BrokerError(OperationError, RuntimeError):
    """A local broker could not be started, found or stopped."""


@dataclass(frozen=True)
class NodeStatus:
    """One Kafka node of a local cluster."""

    node_id: int
    running: bool
    bootstrap: str
    pid: int | None
    started_at: float | None
    log_file: Path
    detail: str


@dataclass(frozen=True)
class BrokerStatus:
    """What `darkroom broker status` reports. ``nodes`` is empty for the embedded broker."""

    running: bool
    bootstrap: str
    pid: int | None
    started_at: float | None
    log_file: Path
    detail: str
    nodes: tuple[NodeStatus, ...] = ()


class PidFile:
    """A JSON record of what a broker started, replaced atomically (never half written)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any] | None:
        """The record, or None when there is none."""
        try:
            record: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as exc:
            raise BrokerError(f"unreadable pid file {self.path}: {exc}") from exc
        return record

    def write(self, record: dict[str, Any]) -> None:
        """Replace the record."""
        write_json(self.path, record)

    def remove(self) -> None:
        """Forget the record (no error when there is none)."""
        self.path.unlink(missing_ok=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    write_file(path, json.dumps(payload, indent=1).encode())


def write_file(path: Path, data: bytes, private: bool = False) -> None:
    """Write ``data`` through a temporary file and a rename; ``private``: readable by the
    owner only (0600) from the first byte, for keys and passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def write_private(path: Path, text: str) -> None:
    """``write_file`` of UTF-8 text, owner-only."""
    write_file(path, text.encode(), private=True)


def cmdline(pid: int) -> str | None:
    """The command line of a live process, or None (Linux /proc, then `ps` elsewhere)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.exists():
        with contextlib.suppress(OSError):
            raw = proc.read_bytes()
            # a zombie (exited, not yet reaped) has an empty command line: treat as gone
            return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
        return None
    result = subprocess.run(
        ["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it stops being a zombie


def terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL."""
    terminate_all([pid], timeout_s)


def terminate_all(pids: Iterable[int], timeout_s: float) -> None:
    """SIGTERM every pid at once, wait up to ``timeout_s`` for all, then SIGKILL the rest.

    At once, because the nodes of a Kafka cluster shut down in parallel far sooner than in turn:
    a broker's controlled shutdown needs the controller quorum that its peers still form.
    """
    remaining = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(remaining):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                remaining.remove(pid)
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for pid in list(remaining):
                _reap(pid)
                if cmdline(pid) is None:
                    remaining.remove(pid)
            time.sleep(0.05)
        if not remaining:
            return


def kill(pid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL and wait until the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if cmdline(pid) is None:
            return
        time.sleep(0.02)


def port_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1", exclude: Iterable[int] = ()) -> list[int]:
    """``count`` distinct free ports (all held open together while chosen), none in ``exclude``."""
    excluded = set(exclude)
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
            if port not in excluded:
                ports.append(port)
        return ports


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for an error message."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def clean_env(drop_prefixes: tuple[str, ...], drop: tuple[str, ...]) -> dict[str, str]:
    """This process's environment less what could change what a broker does."""
    return {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith(drop_prefixes)
    }
