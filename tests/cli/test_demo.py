"""`darkroom demo` end to end: real photos through a private broker and worker, nothing left."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.models.repository import ModelRepository
from tests.cli.runner import darkroom

pytestmark = pytest.mark.broker


def test_demo_enriches_every_sample_and_stops_everything(
    tmp_path: Path, repository: ModelRepository
) -> None:
    result = darkroom("demo", "--workdir", str(tmp_path / "demo"), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "published 19 photo(s)" in out and "all 19 uploads came out" in out
    assert "photos.enriched: 17 photos" in out and "photos.failed: 2 dead letters" in out
    for expected in (
        "Egyptian cat",
        "espresso",
        "OPEN 24 HOURS",
        "IMAGE_TOO_LARGE",
        "CORRUPT_IMAGE",
        "GET /users/alice",
        "GET /users/alice/photos/astronaut.jpg/similar: ",
        "GET /users/dave/people: p",  # the three Obama portraits: one person
        "GET /users/alice/duplicates: best of 3 is chelsea",  # the full-size cat, either way up
        "3 faces, cover",
        "thumbnails: 51 files",  # 17 photos: 256.webp, 256.jpg and 960.jpg each
        "review page of alice: file://",
    ):
        assert expected in out
    assert "best of 3 is chelsea-small" not in out  # half the size, JPEG quality 40
    page = (tmp_path / "demo" / "review" / "alice" / "index.html").read_text()
    assert "Egyptian cat" in page and 'class="box face"' in page
    # a user whose every photo failed gets a page too: their dead letters
    assert "review page of mallory: file://" in out
    dead = (tmp_path / "demo" / "review" / "mallory" / "index.html").read_text()
    assert "0 photos enriched, " in dead and ("CORRUPT_IMAGE" in dead or "IMAGE_TOO_LARGE" in dead)
    assert "worker and broker stopped" in out
    assert not (tmp_path / "demo" / "broker" / "broker.pid").exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []  # neither the worker nor the broker outlives the demo


def test_ctrl_c_in_the_middle_leaves_no_process(
    tmp_path: Path, repository: ModelRepository
) -> None:
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from streams.cli.app import main; main()",
            "demo",
            "--workdir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # as in a terminal: a suite started in the background (`cmd &`, nohup) inherits SIGINT
        # ignored, and Python then keeps ignoring it; the demo ran to the end (seen in a run)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (workdir / "worker.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker is starting: broker and worker are both running now
    time.sleep(1)
    demo.send_signal(signal.SIGINT)
    output = demo.communicate(timeout=60)[0].decode()
    assert demo.returncode == 130, output
    assert "interrupted" in output and "worker and broker stopped" in output
    leftovers = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
