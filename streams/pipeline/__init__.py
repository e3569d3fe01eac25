"""The batch pipeline shared by the worker and `replay --reprocess` (see batch.py)."""

from streams.pipeline.batch import Pipeline
from streams.pipeline.dedup import DuplicatePolicy, DuplicateSearch, DuplicateStore, Findings
from streams.pipeline.outputs import OutputBuilder, RawMessage
from streams.pipeline.photo import Batch, Photo, SkipRule, Started, never_skip

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
