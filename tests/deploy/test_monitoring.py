"""deploy/: the alert rules pass promtool's own tests; every metric the rules and the Grafana
dashboard name is one a live worker exports; and a real Prometheus scrapes a worker and answers
for its lag series. Needs Debian's `prometheus` package (promtool, prometheus); `make test`
installs it, and with CI=true a missing one fails instead of skipping."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.broker import free_port
from streams.config import REPO_ROOT, Settings
from tests.photos import write_photos
from tests.tools_required import require_tool
from tests.worker.harness import WorkerProcess, running, wait_for, wait_for_outcomes
from tests.worker.publishing import publish_folder

DEPLOY = REPO_ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "darkroom.json"


def tool(name: str) -> str:
    return require_tool(name, "prometheus")


def test_the_alert_rules_pass_their_own_tests() -> None:
    promtool = tool("promtool")
    for command in (["check", "rules", RULES.name], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [promtool, *command], cwd=RULES.parent, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def named_metrics() -> set[str]:
    """Every darkroom_* series the rules and the dashboard query."""
    exprs = [
        t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]
    ]
    text = RULES.read_text() + "\n".join(exprs)
    return set(re.findall(r"\bdarkroom_[a-z0-9_]+", text))


def exported(metrics: str) -> set[str]:
    """The series names a /metrics text can hold (a histogram's _bucket, _sum and _count, a
    counter's _total), from its TYPE lines."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", metrics, flags=re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if kind == "counter":
            names |= {f"{name}_total", name.removesuffix("_total") + "_total"}
    return names


class LocalPrometheus:
    """Debian's prometheus on a free 127.0.0.1 port, scraping what ``start`` is told."""

    def __init__(self, folder: Path) -> None:
        self.binary, self.folder = tool("prometheus"), folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, job: str, target: str) -> None:
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        with (self.folder / "prometheus.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's result; [] while Prometheus does not answer yet."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return list(json.loads(answer.read())["data"]["result"])
        except OSError:
            return []

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    local = LocalPrometheus(tmp_path)
    yield local
    local.stop()


@pytest.mark.broker
@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker_settings", ["embedded"], indirect=True)
def test_prometheus_scrapes_a_worker_that_exports_every_metric_named(
    stream_settings: Settings, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    worker = WorkerProcess(stream_settings, tmp_path, "w")
    with running(worker):
        write_photos(tmp_path / "photos", {"ann": 2}, size=96)
        delivered = publish_folder(stream_settings, tmp_path / "photos")
        wait_for_outcomes(stream_settings, len(delivered))
        missing = named_metrics() - exported(worker.metrics())
        assert not missing, f"named in deploy/ but not exported by a worker: {sorted(missing)}"

        prometheus.start("darkroom", urllib.parse.urlsplit(worker.url).netloc)
        series = wait_for(
            lambda: prometheus.query("darkroom_consumer_lag"),
            60,
            "Prometheus to hold the worker's lag series",
        )
        assert {s["metric"]["job"] for s in series} == {"darkroom"}
        assert len(series) == 4  # one per partition the worker owns
