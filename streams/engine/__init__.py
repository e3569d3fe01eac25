"""The enrichment engine: photo bytes in, PhotoEnriched fields (or a typed failure) out."""

from streams.engine.enricher import Enricher, Pending, PhotoInput, Submitted
from streams.engine.results import Enriched, Failed

__all__ = ["Enriched", "Enricher", "Failed", "Pending", "PhotoInput", "Submitted"]
