"""moderate: category probabilities (e.g. sfw / nsfw) and whether any passed its threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streams.inference import agreement
from streams.inference.agreement import Figures
from streams.inference.tasks.base import Fields, TaskRunner, Work
from streams.inference.tasks.classify import softmax
from streams.models.manifest import Task


class ModerateRunner(TaskRunner):
    """Scores per label; flagged when a score reaches ``params.flag[label]``."""

    tasks = (Task.MODERATE,)
    fields = ("moderation",)
    figures = ("score_difference", "flag_agreement")

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """The largest score difference over the categories, and the same flag."""
        ours, theirs = production["moderation"], variant["moderation"]
        names = set(ours["scores"]) | set(theirs["scores"])
        difference = max(
            (abs(ours["scores"].get(n, 0.0) - theirs["scores"].get(n, 0.0)) for n in names),
            default=0.0,
        )
        return {
            "score_difference": difference,
            "flag_agreement": agreement.agree(ours["flagged"], theirs["flagged"]),
        }

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """``{"moderation": {"scores": {...}, "flagged": bool}}`` per photo."""
        (raw,) = self.infer([w.prepared[self.name] for w in works], [self.output("probabilities")])
        probabilities = (
            raw if self.manifest.params.get("outputs_are_probabilities", True) else softmax(raw)
        )
        thresholds: dict[str, float] = dict(self.manifest.params.get("flag", {}))
        fields = []
        for row in np.asarray(probabilities, dtype=np.float32):
            scores = {name: float(row[i]) for i, name in enumerate(self.labels)}
            flagged = any(scores.get(name, 0.0) >= limit for name, limit in thresholds.items())
            fields.append({"moderation": {"scores": scores, "flagged": flagged}})
        return fields
