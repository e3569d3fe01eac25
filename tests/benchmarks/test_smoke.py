"""Every benchmark runs in CI in its smoke mode (``--smoke``: a handful of photos, its report
printed, nothing written), so that a benchmark that breaks fails here instead of silently; the
full runs stay out of CI (`make bench-*`)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
# seconds each smoke run may take on 2 busy cores (most take a fraction)
LIMIT_S = 300
SLOW = {"e2e": 480, "takeover": 480}


def runnable() -> list[str]:
    """The benchmark modules that are run (``if __name__ == "__main__"``), not helpers."""
    found = []
    for path in sorted(BENCHMARKS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                found.append(path.stem)
    return [name for name in found if name != "naive_worker"]  # e2e's baseline worker


def results_state() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir()} if RESULTS.exists() else {}


def test_the_list_finds_the_benchmarks() -> None:
    names = runnable()
    assert {"engine", "e2e", "growth", "quantize", "similar"} <= set(names), names


def limit(name: str) -> int:
    return SLOW.get(name, LIMIT_S)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.timeout(limit(n) + 30)) for n in runnable()]
)
def test_a_benchmark_runs_in_its_smoke_mode(name: str, tmp_path: Path) -> None:
    before = results_state()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{name}", "--smoke"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its brokers and workers too, when it must be stopped
    )
    try:
        output, _ = run.communicate(timeout=limit(name))
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        output, _ = run.communicate()
        pytest.fail(f"benchmarks.{name} --smoke ran past {limit(name)} s:\n{output[-4000:]}")
    assert run.returncode == 0, (
        f"benchmarks.{name} --smoke exited {run.returncode}:\n{output[-4000:]}"
    )
    assert output.strip(), f"benchmarks.{name} --smoke printed no report"
    assert results_state() == before, f"benchmarks.{name} --smoke wrote to benchmarks/results"
