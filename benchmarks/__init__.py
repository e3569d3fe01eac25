"""Darkroom's benchmarks: each module is one `python -m benchmarks.<name>` run (see the README)."""

from streams.config import Settings, load_settings


def production_settings() -> Settings:
    """The settings with the shipped shadow experiments off: the benchmarks measure the model set
    that serves (benchmarks/experiments.py is the one that runs the variants)."""
    settings = load_settings()
    return settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"variants": "none"})}
    )
