"""embed_faces: one embedding per detected face, from crops aligned on the 5 landmarks.

No face-embedding model ships with Darkroom (none installs offline with a licence we can use);
drop an ArcFace-style ONNX model (112x112 aligned face in, one vector out) into models/ with
``task = "embed_faces"`` and it runs after face detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streams.imaging.decode import DecodedPhoto
from streams.inference import agreement
from streams.inference.agreement import Figures
from streams.inference.preprocess import Image
from streams.inference.tasks.base import Fields, TaskRunner, Work
from streams.inference.tasks.classify import l2_normalise
from streams.models.manifest import Task

# Where the 5 landmarks sit in a 112x112 ArcFace crop (InsightFace's reference template).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def align_face(image: Image, landmarks: npt.NDArray[np.float32], size: tuple[int, int]) -> Image:
    """Similarity-warp ``image`` so the 5 landmarks land on the template (scaled to ``size``)."""
    height, width = size
    template = ARCFACE_TEMPLATE * np.array([width / 112.0, height / 112.0], dtype=np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(landmarks, template, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks: fall back to scaling the landmarks' bounding box
        x0, y0 = landmarks.min(axis=0)
        x1, y1 = landmarks.max(axis=0)
        matrix = np.array(
            [
                [width / max(x1 - x0, 1), 0, -x0 * width / max(x1 - x0, 1)],
                [0, height / max(y1 - y0, 1), -y0 * height / max(y1 - y0, 1)],
            ]
        )
    aligned = cv2.warpAffine(image, matrix, (width, height), borderValue=(0, 0, 0))
    return np.asarray(aligned, dtype=np.uint8)


class FaceEmbedRunner(TaskRunner):
    """Adds ``embedding`` to every face the detector found."""

    tasks = (Task.EMBED_FACES,)
    requires = (Task.DETECT_FACES,)  # it embeds the faces the detector put into ``faces``
    fields = ("faces",)
    provenance_key: str | None = "faces.embedding"
    figures = ("face_embedding_distance",)

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """Mean Euclidean distance between the two embeddings of each face (same detector, so
        the faces are the same, in the same order); nothing when no face has both."""
        pairs = [
            (ours["embedding"], theirs["embedding"])
            for ours, theirs in zip(
                production.get("faces") or [], variant.get("faces") or [], strict=False
            )
            if ours.get("embedding") and theirs.get("embedding")
        ]
        if not pairs:
            return {}
        distances = [agreement.euclidean(a, b) for a, b in pairs]
        return {"face_embedding_distance": sum(distances) / len(distances)}

    def prepare(self, photo: DecodedPhoto) -> None:  # type: ignore[override]
        """Nothing to prepare: the crops depend on the faces found later."""
        return None

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """Embeds all faces of the batch in one run; photos without faces get no change."""
        crops: list[Image] = []
        owners: list[tuple[int, int]] = []
        for i, work in enumerate(works):
            for j, face in enumerate(work.fields.get("faces") or []):
                crops.append(self._crop(work.photo, face))
                owners.append((i, j))
        if not crops:
            return [{} for _ in works]
        tensor = self.to_tensor(crops)
        (vectors,) = self.session.run({self.spec.name: tensor}, [self.output("embedding")])
        unit = l2_normalise(vectors.reshape(len(crops), -1).astype(np.float32))
        faces: dict[int, list[dict[str, Any]]] = {}
        for (i, j), vector in zip(owners, unit, strict=True):
            updated = faces.setdefault(i, [dict(f) for f in works[i].fields["faces"]])
            updated[j]["embedding"] = vector.tolist()
        return [{"faces": faces[i]} if i in faces else {} for i in range(len(works))]

    def _crop(self, photo: DecodedPhoto, face: dict[str, Any]) -> Image:
        points = np.array([[p["x"], p["y"]] for p in face["landmarks"]], dtype=np.float32)
        return align_face(photo.image, points / np.float32(photo.scale), self.spec.size)
