"""`darkroom demo` end to end: real sample photos through a private broker, nothing left running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.runner import darkroom

pytestmark = pytest.mark.broker


def test_demo_publishes_and_reads_back_every_sample(tmp_path: Path) -> None:
    result = darkroom("demo", "--workdir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "published 15 photo(s)" in result.stdout
    for name in ("chelsea.jpg", "astronaut.jpg", "truncated.jpg", "bomb.png"):
        assert name in result.stdout
    assert "broker stopped" in result.stdout
    assert not (tmp_path / "broker" / "broker.pid").exists()
