"""Tag scores: a classifier's class probabilities summed per concept, plus people and text.

A tag's score is the probability that the photo shows any class of the tag (the classes are
exclusive, so their probabilities add): "Egyptian cat" 0.45 and "tabby" 0.30 make "Cat" 0.75,
where neither label alone passes 0.55. Parents score at least as high as their children, since
they hold all of their classes. Faces and OCR lines add what ImageNet has no class for: "Person"
and "People" (the detector's scores), "Text" and "Document" (the recogniser's).

Every tag says which field it came from (``source``), and that field's ``produced_by`` entry
names the model and version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.models.tags import TagTable

Tag = dict[str, Any]  # name, score, parents, source: PhotoEnriched's Tag record
DOCUMENT_LINES = 5  # lines of text that make a photo a document (a page, a receipt, a menu)


class TagScorer:
    """Tag scores for batches of class probabilities, with one table."""

    def __init__(self, table: TagTable, min_score: float) -> None:
        self.names = sorted(table.parents)
        self.parents = table.parents
        self.min_score = min_score
        column = {name: i for i, name in enumerate(self.names)}
        self.membership = np.zeros((len(table.classes), len(self.names)), dtype=np.float32)
        for index, concepts in enumerate(table.classes):
            for name in concepts:
                self.membership[index, column[name]] = 1.0

    def score(self, probabilities: npt.NDArray[np.float32]) -> list[list[Tag]]:
        """For each row of (photos, classes) probabilities, its tags, best first."""
        scores = probabilities[:, : len(self.membership)] @ self.membership
        return [
            ranked(
                tag(self.names[i], float(row[i]), self.parents[self.names[i]], "labels")
                for i in np.flatnonzero(row >= self.min_score)
            )
            for row in scores
        ]


def tag(name: str, score: float, parents: Sequence[str], source: str) -> Tag:
    """One Tag record."""
    return {"name": name, "score": round(score, 4), "parents": list(parents), "source": source}


def ranked(tags: Any) -> list[Tag]:
    """Best first, then by name (so equal scores come out in one order)."""
    return sorted(tags, key=lambda t: (-t["score"], t["name"]))


def with_people_and_text(fields: dict[str, Any], min_score: float) -> list[Tag] | None:
    """``fields["tags"]`` plus the tags of its faces and text lines (None: nothing to tag)."""
    tags = {t["name"]: t for t in fields.get("tags") or []}
    faces = sorted((float(f["score"]) for f in fields.get("faces") or []), reverse=True)
    lines = sorted((float(line["score"]) for line in fields.get("ocr") or []), reverse=True)
    derived = []
    if faces and faces[0] >= min_score:
        derived.append(tag("Person", faces[0], [], "faces"))
    if len(faces) > 1 and faces[1] >= min_score:
        derived.append(tag("People", faces[1], ["Person"], "faces"))  # the second-surest face
    if lines and lines[0] >= min_score:
        derived.append(tag("Text", lines[0], [], "ocr"))
    if len(lines) >= DOCUMENT_LINES and lines[DOCUMENT_LINES - 1] >= min_score:
        derived.append(tag("Document", lines[DOCUMENT_LINES - 1], ["Text"], "ocr"))
    for new in derived:
        known = tags.get(new["name"])
        if known is None or known["score"] < new["score"]:
            tags[new["name"]] = new  # the surer source wins; a name is one tag
    if not tags and "tags" not in fields:
        return None
    return ranked(tags.values())
