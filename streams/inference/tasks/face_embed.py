"""embed_faces: one embedding per detected face, from crops aligned on the 5 landmarks.

Each face is warped so that its 5 landmarks (image-left eye, image-right eye, nose tip, left and
right mouth corner: what the detector puts in events) land on the model's template, by the least
squares similarity transform (Umeyama's; dlib's ``find_similarity_transform`` is the same fit).
The template is the manifest's ``params.template``, in input pixels with pixel centres at whole
numbers; without one, InsightFace's 112 px ArcFace template scaled to the input size.

A face larger than twice the chip is shrunk by area averaging before the bilinear warp: bilinear
sampling alone skips pixels and aliases, where dlib's own chip extraction samples a pyramid.
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
from streams.models.manifest import ManifestError, Task

F64 = npt.NDArray[np.float64]

# Where the 5 landmarks sit in a 112x112 ArcFace crop (InsightFace's reference template).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: F64, target: F64) -> F64:
    """The 2x3 similarity (rotation, uniform scale, shift) that maps ``source`` points onto
    ``target`` with the least squared error (Umeyama 1991, without reflections)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    variance = float((centred_source**2).sum(axis=1).mean())
    if variance < 1e-12:
        raise ValueError("the landmarks coincide")
    u, singular, vt = np.linalg.svd(centred_target.T @ centred_source / len(source))
    sign = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign)) / variance
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(image: Image, landmarks: F64, template: F64, size: tuple[int, int]) -> Image:
    """``image`` warped so that ``landmarks`` land on ``template``: a (height, width) chip."""
    height, width = size
    try:
        matrix = similarity_transform(landmarks, template)
    except ValueError:  # degenerate landmarks: the chip is black, never a crash
        return np.zeros((height, width, 3), dtype=np.uint8)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        shrink = 2.0 ** -int(np.floor(np.log2(1.0 / scale)))  # at most 2x the chip's detail
        image = np.asarray(
            cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
        matrix = np.hstack([matrix[:, :2] / shrink, matrix[:, 2:]])
    chip = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR)
    return np.asarray(chip, dtype=np.uint8)


class FaceEmbedRunner(TaskRunner):
    """Adds ``embedding`` to every face the detector found.

    Manifest params: ``template`` (5 [x, y] points, see above), ``normalise`` (L2-normalise the
    vectors, default true; dlib's descriptors are compared raw, by Euclidean distance), and
    ``decode_side`` (the decoded long side its faces need: a chip from a face smaller than it is
    blurred up, default the input size).
    """

    tasks = (Task.EMBED_FACES,)
    requires = (Task.DETECT_FACES,)  # it embeds the faces the detector put into ``faces``
    fields = ("faces",)
    provenance_key: str | None = "faces.embedding"
    figures = ("face_embedding_distance",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        params = self.manifest.params
        height, width = self.spec.size
        default = ARCFACE_TEMPLATE * np.array([width / 112.0, height / 112.0])
        self.template = np.asarray(params.get("template", default), dtype=np.float64)
        if self.template.shape != (5, 2):
            raise ManifestError(f"{self.manifest.key}: params.template needs 5 [x, y] points")
        self.normalise = bool(params.get("normalise", True))
        self.decode_side = int(params.get("decode_side", max(height, width)))

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

    def needed_side(self) -> int:
        """The faces' detail, not the chip's size, sets how large photos are decoded."""
        return max(self.decode_side, *self.spec.size)

    def photos_per_run(self, max_batch: int) -> int:
        """Chips per session run (``run`` splits a batch's faces by it): bounded at the chip's
        size, not the photo's."""
        return max(
            1, min(max_batch, self.max_run_pixels // (self.spec.size[0] * self.spec.size[1]))
        )

    def prepare(self, photo: DecodedPhoto) -> None:  # type: ignore[override]
        """Nothing to prepare: the crops depend on the faces found later."""
        return None

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """Embeds all faces of the batch in one run. A photo without faces gets its empty list
        back, so that its produced_by records this model too (replay's staleness check reads
        it: a photo is up to date only when every current model is recorded)."""
        crops: list[Image] = []
        owners: list[tuple[int, int]] = []
        for i, work in enumerate(works):
            for j, face in enumerate(work.fields.get("faces") or []):
                crops.append(self.crop(work.photo, face))
                owners.append((i, j))
        if not crops:  # the detector's empty lists, given back: produced_by says we ran
            return [{"faces": work.fields.get("faces")} for work in works]
        per_run = self.photos_per_run(len(crops))  # a group photo's faces are many chips
        runs = [
            self.session.run(
                {self.spec.name: self.to_tensor(crops[at : at + per_run])},
                [self.output("embedding")],
            )[0].reshape(len(crops[at : at + per_run]), -1)
            for at in range(0, len(crops), per_run)
        ]
        vectors = np.concatenate(runs).astype(np.float32)
        if self.normalise:
            vectors = l2_normalise(vectors)
        faces: dict[int, list[dict[str, Any]]] = {}
        for (i, j), vector in zip(owners, vectors, strict=True):
            updated = faces.setdefault(i, [dict(f) for f in works[i].fields["faces"]])
            updated[j]["embedding"] = vector.tolist()
        return [{"faces": faces.get(i, work.fields.get("faces"))} for i, work in enumerate(works)]

    def crop(self, photo: DecodedPhoto, face: dict[str, Any]) -> Image:
        """The aligned chip of one face of ``photo`` (landmarks are in photo pixels)."""
        points = np.array([[p["x"], p["y"]] for p in face["landmarks"]], dtype=np.float64)
        return align_face(photo.image, points / photo.scale, self.template, self.spec.size)
