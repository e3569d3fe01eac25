"""detect_faces: MediaPipe BlazeFace decoding (SSD anchors, sigmoid scores, weighted NMS).

The network sees the photo letterboxed into its square input; boxes and keypoints come back
normalised to that square and are mapped to photo pixels with the letterbox placement. BlazeFace
gives 6 keypoints (eyes, nose tip, mouth centre, ears); events carry the common 5-point layout
(image-left eye, image-right eye, nose, left and right mouth corner), the corners estimated as
mouth centre +- 0.414 x eye vector (the ArcFace template's ratio). Each face's ``sharpness`` is
measured on the decoded pixels (streams.imaging.quality.face_sharpness): the best shot of a
duplicate group is the one whose faces are in focus.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streams.imaging.quality import face_sharpness
from streams.inference import agreement
from streams.inference.agreement import Figures
from streams.inference.tasks.base import Fields, TaskRunner, Work
from streams.models.manifest import Task

F32 = npt.NDArray[np.float32]
RAW_SCORE_CLIP = 100.0  # MediaPipe score_clipping_thresh
MOUTH_CORNER_RATIO = 0.414


def ssd_anchors(input_size: int, strides: Sequence[int], interpolated_ratio: float) -> F32:
    """MediaPipe SsdAnchorsCalculator with fixed anchor size: (anchors, 2) centres in 0..1."""
    parts: list[F32] = []
    for stride, group in itertools.groupby(strides):
        layers = len(list(group))
        per_layer = 2 if interpolated_ratio == 1.0 else 1
        cells = -(-input_size // stride)
        centre = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        yy, xx = np.meshgrid(centre, centre, indexing="ij")
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        parts.append(np.repeat(grid, layers * per_layer, axis=0))
    return np.concatenate(parts).astype(np.float32)


def sigmoid_scores(logits: F32) -> F32:
    """Clip logits to +-100 as MediaPipe does, then an overflow-free sigmoid."""
    clipped = np.clip(logits, -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
    scores: F32 = (0.5 + 0.5 * np.tanh(0.5 * clipped)).astype(np.float32)
    return scores


def decode(raw: F32, anchors: F32, input_size: int) -> tuple[F32, F32]:
    """(N, A, 16) regressors -> normalised xyxy boxes (N, A, 4) and keypoints (N, A, 6, 2)."""
    points = raw.reshape(raw.shape[0], raw.shape[1], 8, 2) / np.float32(input_size)
    centre = points[:, :, 0] + anchors
    half = points[:, :, 1] * np.float32(0.5)
    boxes = np.concatenate([centre - half, centre + half], axis=-1)
    keypoints = points[:, :, 2:] + anchors[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32)


def iou_one_to_many(box: F32, boxes: F32) -> F32:
    """Intersection over union of one xyxy box with each row of ``boxes``."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def weighted_nms(boxes: F32, keypoints: F32, scores: F32, iou: float) -> tuple[F32, F32, F32]:
    """MediaPipe's WEIGHTED NMS: each cluster becomes its score-weighted mean, best score."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    kept: list[tuple[F32, F32, float]] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        members = alive & (iou_one_to_many(boxes[i], boxes) > iou)
        members[i] = True
        alive &= ~members
        weights = scores[members] / scores[members].sum()
        kept.append(
            (
                np.tensordot(weights, boxes[members], axes=1),
                np.tensordot(weights, keypoints[members], axes=1),
                float(scores[i]),
            )
        )
    if not kept:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0, 6, 2), np.float32),
            np.zeros(0, np.float32),
        )
    return (
        np.stack([k[0] for k in kept]).astype(np.float32),
        np.stack([k[1] for k in kept]).astype(np.float32),
        np.asarray([k[2] for k in kept], np.float32),
    )


def five_landmarks(keypoints: F32) -> F32:
    """6 BlazeFace keypoints (..., 6, 2) -> 5 points (..., 5, 2), see the module doc."""
    left_eye, right_eye = keypoints[..., 0, :], keypoints[..., 1, :]
    nose, mouth = keypoints[..., 2, :], keypoints[..., 3, :]
    half_mouth = np.float32(MOUTH_CORNER_RATIO) * (right_eye - left_eye)
    return np.stack(
        [left_eye, right_eye, nose, mouth - half_mouth, mouth + half_mouth], axis=-2
    ).astype(np.float32)


class FaceDetectRunner(TaskRunner):
    """BlazeFace: boxes, scores and 5 landmarks in photo pixels."""

    tasks = (Task.DETECT_FACES,)
    fields = ("faces",)
    figures = ("face_count_agreement", "face_iou")

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """Same number of faces, and the mean IoU of matched boxes (a missed face counts 0)."""
        ours = [face["box"] for face in production.get("faces") or []]
        theirs = [face["box"] for face in variant.get("faces") or []]
        return {
            "face_count_agreement": agreement.agree(len(ours), len(theirs)),
            "face_iou": agreement.mean_matched_iou(ours, theirs),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        params = self.manifest.params
        self.input_size = self.spec.size[0]
        self.anchors = ssd_anchors(
            self.input_size,
            params.get("anchor_strides", [4]),
            float(params.get("interpolated_scale_aspect_ratio", 0.0)),
        )
        self.score_threshold = float(params.get("score_threshold", 0.5))
        self.iou_threshold = float(params.get("iou_threshold", 0.3))

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """Faces per photo, best first."""
        prepared = [w.prepared[self.name] for w in works]
        regressors, logits = self.infer(
            prepared, [self.output("regressors"), self.output("scores")]
        )
        boxes, keypoints = decode(regressors.astype(np.float32), self.anchors, self.input_size)
        scores = sigmoid_scores(logits.astype(np.float32)[..., 0])
        fields: list[Fields] = []
        for i, work in enumerate(works):
            valid = (scores[i] >= self.score_threshold) & np.all(
                boxes[i][:, 2:] > boxes[i][:, :2], axis=1
            )
            b, k, s = weighted_nms(
                boxes[i][valid], keypoints[i][valid], scores[i][valid], self.iou_threshold
            )
            place = prepared[i].placement
            size = np.float32(self.input_size)
            corners = place.to_photo(b.reshape(-1, 2, 2) * size).reshape(-1, 4)
            marks = place.to_photo(five_landmarks(k) * size)
            limit = np.array([work.photo.width, work.photo.height] * 2, dtype=np.float32)
            corners = np.clip(corners, 0.0, limit)
            decoded = corners / np.float32(work.photo.scale)  # boxes in the decoded pixels
            fields.append(
                {
                    "faces": [
                        {
                            "box": dict(
                                zip(("x1", "y1", "x2", "y2"), map(float, box), strict=True)
                            ),
                            "score": float(score),
                            "landmarks": [{"x": float(x), "y": float(y)} for x, y in points],
                            "sharpness": face_sharpness(work.photo.image, at.tolist()),
                            "embedding": None,
                        }
                        for box, at, score, points in zip(corners, decoded, s, marks, strict=True)
                    ]
                }
            )
        return fields
