"""classify (labels, plus an embedding when the graph has one) and embed (embedding only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from streams.inference import agreement
from streams.inference.agreement import Figures
from streams.inference.tags import TagScorer
from streams.inference.tasks.base import Fields, TaskRunner, Work
from streams.models.manifest import Task


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: npt.NDArray[np.float32] = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def l2_normalise(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = vectors / np.maximum(norms, 1e-12)
    return unit


class ClassifyRunner(TaskRunner):
    """Top-k labels with softmax scores; tags when the manifest has [tags]; the embedding too,
    unless an embed model is enabled."""

    tasks = (Task.CLASSIFY,)
    # A classifier's pooled features are a by-product; a model made for embeddings wins.
    defers: ClassVar[Mapping[str, Task]] = MappingProxyType({"embedding": Task.EMBED})
    fields = ("labels", "tags", "embedding")
    figures = ("top1_agreement", "top5_overlap", "embedding_cosine")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tags = self.manifest.tags
        self.tagger = (
            TagScorer(self.artifacts.read_tags(), tags.min_score) if tags is not None else None
        )

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """Same best label, share of production's top labels kept, embedding cosine."""
        ours, theirs = production.get("labels") or [], variant.get("labels") or []
        figures = {
            "top1_agreement": agreement.agree(
                ours[0]["class_index"] if ours else None,
                theirs[0]["class_index"] if theirs else None,
            ),
            "top5_overlap": agreement.top_k_overlap(ours[:5], theirs[:5]),
        }
        if production.get("embedding") and variant.get("embedding"):
            figures["embedding_cosine"] = agreement.cosine(
                production["embedding"], variant["embedding"]
            )
        return figures

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """Labels (top_k, at least min_score) and the L2-normalised embedding."""
        top_k = int(self.manifest.params.get("top_k", 5))
        min_score = float(self.manifest.params.get("min_score", 0.0))
        names = [self.output("logits")]
        has_embedding = "embedding" not in self.deferred and "embedding" in self.manifest.outputs
        if has_embedding:
            names.append(self.output("embedding"))
        results = self.infer([w.prepared[self.name] for w in works], names)
        probabilities = softmax(results[0])
        best = np.argsort(-probabilities, axis=1)[:, :top_k]
        tags = self.tagger.score(probabilities) if self.tagger is not None else None
        fields: list[Fields] = []
        for row, indices in enumerate(best):
            labels = [
                {
                    "name": self.labels[i] if i < len(self.labels) else str(i),
                    "score": float(probabilities[row, i]),
                    "class_index": int(i),
                }
                for i in indices
                if probabilities[row, i] >= min_score
            ]
            item: Fields = {"labels": labels}
            if tags is not None:
                item["tags"] = tags[row]
            if has_embedding:
                item["embedding"] = l2_normalise(results[1])[row].tolist()
            fields.append(item)
        return fields


class EmbedRunner(TaskRunner):
    """An image embedding (e.g. a CLIP image tower a user drops into models/)."""

    tasks = (Task.EMBED,)
    fields = ("embedding",)
    figures = ("embedding_cosine",)

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """Cosine of the two embeddings."""
        return {"embedding_cosine": agreement.cosine(production["embedding"], variant["embedding"])}

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """The L2-normalised embedding of each photo."""
        (vectors,) = self.infer([w.prepared[self.name] for w in works], [self.output("embedding")])
        flat = vectors.reshape(len(works), -1).astype(np.float32)
        return [{"embedding": row.tolist()} for row in l2_normalise(flat)]
