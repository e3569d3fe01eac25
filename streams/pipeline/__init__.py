"""The batch pipeline shared by the worker and `replay --reprocess` (see batch.py)."""

from streams.pipeline.batch import Batch, Photo, Pipeline, SkipRule, Started, never_skip
from streams.pipeline.dedup import DuplicatePolicy, DuplicateSearch, DuplicateStore, Findings
from streams.pipeline.outputs import OutputBuilder, RawMessage

__all__ = [
    "Batch",
    "DuplicatePolicy",
    "DuplicateSearch",
    "DuplicateStore",
    "Findings",
    "OutputBuilder",
    "Photo",
    "Pipeline",
    "RawMessage",
    "SkipRule",
    "Started",
    "never_skip",
]
