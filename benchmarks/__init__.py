"""Darkroom's benchmarks: each module is one `python -m benchmarks.<name>` run (see the README).

Every one takes ``--smoke``: a handful of photos through the same code in seconds, its report
printed and nothing written, so that CI (tests/benchmarks/test_smoke.py) fails when a benchmark
breaks, and its committed results are never overwritten by a run too small to mean anything.
"""

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streams.config import Settings, load_settings
from streams.logs import configure_logging

RESULTS = Path(__file__).parent / "results"


def output_args(parser: argparse.ArgumentParser, smoke: str) -> None:
    """``--smoke`` (``smoke`` says what it runs) and ``--out`` on a benchmark's parser; read
    them back with ``out_of``."""
    parser.add_argument(
        "--smoke", action="store_true", help=f"{smoke}: that it runs; writes no results"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")


def out_of(args: argparse.Namespace) -> Path | None:
    """Where a run's results go: None under ``--smoke`` (printed only)."""
    return None if args.smoke else Path(args.out)


def write_results(
    name: str, result: dict[str, Any], markdown: str, out: Path | None = RESULTS
) -> None:
    """``<out>/<name>.json`` and ``<out>/<name>.md`` (none when ``out`` is None: a smoke
    run), and the markdown printed."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2, default=str) + "\n"
        (out / f"{name}.json").write_text(text, encoding="utf-8")
        (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def run_measured(
    name: str,
    doc: str,
    smoke: str,
    measure: Callable[[bool], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    argv: Sequence[str] | None,
) -> None:
    """The whole ``main`` of a benchmark with no options of its own: ``--smoke`` and ``--out``,
    warnings-only logs, ``measure(smoke)``, then its results written as ``name``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    output_args(parser, smoke=smoke)
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    result = measure(args.smoke)
    write_results(name, result, report(result), out_of(args))


def ran_on(name: str, machine: dict[str, Any]) -> str:
    """How a report says where it was measured: "`python -m benchmarks.<name>` on 2 CPUs,
    <date>" (``machine``: benchmarks.engine.machine())."""
    return f"`python -m benchmarks.{name}` on {machine['cpus']} CPUs, {machine['date']}"


def production_settings() -> Settings:
    """The settings with the shipped shadow experiments off: the benchmarks measure the model set
    that serves (benchmarks/experiments.py is the one that runs the variants)."""
    settings = load_settings()
    return settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"variants": "none"})}
    )
