"""A photo's faces as the people clustering takes them (``Face``, ``PhotoFaces``, from an
enrichment's fields by ``faces_of``) and as photo_state keeps them (``Given``: the clusters they
were given, with what a deletion of the photo and a new choice of cover need, ``Kept``). The
clustering is streams/pipeline/people.py, the covers streams/pipeline/covers.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from streams.pipeline import covers
from streams.pipeline.people_state import pack_mean


@dataclass(frozen=True)
class Face:
    """One embedded face of a photo, as the clustering takes it."""

    index: int  # its place in the photo's faces
    embedding: Sequence[float]
    box: Sequence[float]  # x1, y1, x2, y2
    score: float = 0.0  # how well it would show its person (streams.pipeline.covers)
    crop: Sequence[float] | None = None  # its cover square, in the photo


class PhotoFaces(NamedTuple):
    """One photo's faces, as a batch hands them to the clustering."""

    user_id: str
    photo_id: str
    model: str  # the face model, name@version
    faces: list[Face | None]  # None: a face without embedding
    preview: dict[str, Any] | None = None  # streams.pipeline.covers.preview_of


@dataclass(frozen=True)
class Kept:
    """One embedded face as photo_state keeps it: what a deletion of its photo takes out of
    its person (the embedding, packed), and what choosing the person's cover again needs."""

    embedding: str
    box: list[float]
    score: float
    crop: list[float] | None

    def to_json(self) -> list[Any]:
        return [self.embedding, self.box, self.score, self.crop]

    @classmethod
    def from_json(cls, value: list[Any]) -> Kept:
        """[embedding, box] (kept before covers were scored: ``covers.unscored``) or
        [embedding, box, score, crop]."""
        if len(value) < 4:
            return cls(value[0], value[1], covers.unscored(value[1]), None)
        return cls(value[0], value[1], float(value[2]), value[3])


@dataclass(frozen=True)
class Given:
    """The clusters a photo's faces were given, and by which face model (kept in photo_state);
    with each face as ``Kept`` (None: a face without embedding; ``faces`` None: a state written
    before they were kept) and the photo's preview (streams.pipeline.covers.preview_of)."""

    model: str
    clusters: list[str | None]
    faces: list[Kept | None] | None = None
    preview: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """As photo_state keeps it."""
        found: dict[str, Any] = {"model": self.model, "clusters": list(self.clusters)}
        if self.faces is not None:
            found["faces"] = [None if f is None else f.to_json() for f in self.faces]
        if self.preview is not None and any(c is not None for c in self.clusters):
            found["preview"] = self.preview  # only a photo with a person's face needs it
        return found

    @classmethod
    def from_json(cls, value: Any) -> Given | None:
        """From photo_state (None: the photo was processed before people were kept)."""
        if not isinstance(value, dict):
            return None
        faces = value.get("faces")
        kept = None if faces is None else [None if f is None else Kept.from_json(f) for f in faces]
        return cls(str(value["model"]), list(value["clusters"]), kept, value.get("preview"))

    @classmethod
    def of(
        cls,
        model: str,
        clusters: list[str | None],
        faces: list[Face | None],
        preview: dict[str, Any] | None = None,
    ) -> Given:
        """What a photo's ``faces`` were given."""
        kept = [
            None
            if f is None
            else Kept(
                pack_mean(np.asarray(f.embedding)),
                [round(v, 1) for v in f.box],
                f.score,
                None if f.crop is None else list(f.crop),
            )
            for f in faces
        ]
        return cls(model, clusters, kept, preview)

    def cover(self, photo_id: str, index: int) -> tuple[dict[str, Any], float] | None:
        """Face ``index`` as its person's cover, with its score (None: not kept)."""
        face = None if self.faces is None or index >= len(self.faces) else self.faces[index]
        if face is None:
            return None
        return covers.cover_of(photo_id, face.box, face.crop, self.preview), face.score


def face_model(produced_by: Mapping[str, Mapping[str, str]]) -> str | None:
    """name@version of the model that embedded the faces, or None (no face was embedded)."""
    ref = produced_by.get("faces.embedding")
    return None if ref is None else f"{ref['name']}@{ref['version']}"


def faces_of(fields: dict[str, Any]) -> list[Face | None]:
    """An enrichment's faces as the clustering takes them (None: a face without embedding),
    each scored as a cover, with its cover square (streams.pipeline.covers)."""
    out: list[Face | None] = []
    width, height = int(fields.get("width") or 0), int(fields.get("height") or 0)
    exposure = covers.exposure_of(fields)
    for index, face in enumerate(fields.get("faces") or []):
        embedding, box = face.get("embedding"), face["box"]
        if embedding is None:
            out.append(None)
            continue
        corners = [box["x1"], box["y1"], box["x2"], box["y2"]]
        scored = covers.score(
            corners, face.get("sharpness"), face.get("landmarks"), face.get("score"), exposure
        )
        crop = covers.square(corners, width, height) if width and height else None
        out.append(Face(index, embedding, corners, round(scored, 6), crop))
    return out
