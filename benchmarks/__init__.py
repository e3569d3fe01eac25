"""Darkroom's benchmarks: each module is one `python -m benchmarks.<name>` run (see the README)."""

import json
from pathlib import Path
from typing import Any

from streams.config import Settings, load_settings

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, result: dict[str, Any], markdown: str) -> None:
    """``results/<name>.json`` and ``results/<name>.md``, and the markdown printed."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def production_settings() -> Settings:
    """The settings with the shipped shadow experiments off: the benchmarks measure the model set
    that serves (benchmarks/experiments.py is the one that runs the variants)."""
    settings = load_settings()
    return settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"variants": "none"})}
    )
