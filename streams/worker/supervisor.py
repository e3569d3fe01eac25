"""Run `darkroom worker` as a child process: start, wait until ready, ask, stop.

Used by the demo, the benchmarks and the tests, so each drives the very worker a user runs. When
the settings name an API token file, its first token goes with every request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.broker import free_port
from streams.config import Settings, settings_env
from streams.errors import OperationError
from streams.worker.access import read_tokens


class WorkerFailedError(OperationError, RuntimeError):
    """The worker exited or did not become ready."""


class WorkerProcess:
    """One `darkroom worker` in its own process group, data folder and web port."""

    def __init__(
        self,
        settings: Settings,
        folder: Path,
        name: str,
        module: str | None = None,
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``module``: run ``python -m module`` instead of `darkroom worker` (benchmarks);
        ``args``: options for `darkroom worker` (e.g. ``--reset-local-state``); ``env``: more
        environment variables."""
        worker = settings.worker.model_copy(
            update={"data_dir": folder / name / "data", "web_port": free_port()}
        )
        self.settings = settings.model_copy(update={"worker": worker})
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.module = module
        self.args = args
        self.env = dict(env or {})
        token_file = settings.worker.api_token_file
        token = read_tokens(token_file)[0].decode() if token_file is not None else None
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def url(self) -> str:
        """Base URL of its web views."""
        return f"http://{self.settings.worker.web_host}:{self.settings.worker.web_port}"

    def start(self) -> WorkerProcess:
        """Spawn it (logs as JSON lines to ``self.log``)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **settings_env(self.settings),
            "DARKROOM_LOG_FORMAT": "json",
            **self.env,
        }
        command = (
            [sys.executable, "-m", self.module]
            if self.module
            else [
                sys.executable,
                "-c",
                "from streams.cli.app import main; main()",
                "worker",
                *self.args,
            ]
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        """Until /healthz says ok with at least one partition; returns the health body."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise WorkerFailedError(f"worker exited ({code}):\n{self.tail_log()}")
            status, body = self.get("/healthz")
            if status == 200 and body.get("partitions"):
                return body
            time.sleep(0.3)
        raise WorkerFailedError(f"worker not ready within {timeout_s:g} s:\n{self.tail_log()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """GET a JSON page: (status, body); (0, {}) while nothing answers. ``headers``: instead
        of the token's (``{}``: none)."""
        request = urllib.request.Request(
            self.url + path, headers=self.auth if headers is None else headers
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return int(error.code), json.loads(body or b"{}")
            except ValueError:  # not one of Darkroom's pages (e.g. aiohttp's own 404)
                return int(error.code), {"text": body.decode(errors="replace")}
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return 0, {}

    def metrics(self) -> str:
        """The Prometheus exposition text."""
        request = urllib.request.Request(self.url + "/metrics", headers=self.auth)
        with urllib.request.urlopen(request, timeout=5) as response:
            text: str = response.read().decode()
            return text

    def kill(self) -> None:
        """kill -9: no goodbye, no commit."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not leave in time. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def tail_log(self, lines: int = 30) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
