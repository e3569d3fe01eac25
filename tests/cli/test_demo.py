"""`darkroom demo` end to end: real photos through a private broker and worker, nothing left."""

from __future__ import annotations

import subprocess
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
    assert "published 15 photo(s)" in out and "all 15 uploads came out" in out
    assert "photos.enriched: 13 photos" in out and "photos.failed: 2 dead letters" in out
    for expected in (
        "Egyptian cat",
        "espresso",
        "OPEN 24 HOURS",
        "IMAGE_TOO_LARGE",
        "CORRUPT_IMAGE",
        "GET /users/alice",
    ):
        assert expected in out
    assert "worker and broker stopped" in out
    assert not (tmp_path / "demo" / "broker" / "broker.pid").exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []  # neither the worker nor the broker outlives the demo
