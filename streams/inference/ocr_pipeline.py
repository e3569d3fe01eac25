"""PP-OCR text detection (DB) and recognition (CTC) pre- and post-processing, numpy + OpenCV.

A re-implementation of RapidOCR 3.10.0's pipeline (``ch_ppocr_det``, ``ch_ppocr_rec``) so that
Darkroom owns the onnxruntime sessions and batches across photos. Constants come from rapidocr's
config.yaml and code. The DB "unclip" is analytic (each side of the min-area rectangle grows by
``area * unclip_ratio / perimeter``) instead of pyclipper/shapely: within 1 px of the reference
on every box checked. The angle classifier is not used: on photos it flipped correct lines.

All images are BGR uint8 HxWx3 (the models were trained on cv2.imread output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

U8Image = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Quad = npt.NDArray[np.float32]  # shape (4, 2): tl, tr, br, bl in original pixels

# --- reference constants (rapidocr 3.10.0 config.yaml) -----------------------
DET_LIMIT_SIDE_LEN = 736  # Det.limit_side_len
DET_LIMIT_TYPE = "min"  # Det.limit_type ("min": upscale so the short side >= limit)
MAX_SIDE_LEN = 2000  # Global.max_side_len (downscale before detection)
MIN_SIDE_LEN = 30  # Global.min_side_len
DB_THRESH = 0.3  # Det.thresh: binarisation threshold of the probability map
DB_BOX_THRESH = 0.5  # Det.box_thresh: minimum mean probability inside a box
DB_UNCLIP_RATIO = 1.6  # Det.unclip_ratio
DB_MAX_CANDIDATES = 1000  # Det.max_candidates
DB_MIN_SIZE = 3  # DBPostProcess.min_size (short side, in map pixels)
SORT_Y_TOL = 10  # TextDetector._BOX_SORT_Y_THRESHOLD (pixels)
REC_HEIGHT = 48  # Rec.rec_img_shape[1]
REC_MIN_WIDTH = 320  # Rec.rec_img_shape[2]: batches are padded to at least this
REC_BATCH = 6  # Rec.rec_batch_num
TEXT_SCORE = 0.5  # Global.text_score: drop lines with a lower rec score
CHARSET_META_KEY = "character"  # ONNX metadata_props key holding the dictionary
# not from the reference: glyphs that round blobs (eyes, coins, lamps) get read as
ROUND_GLYPHS = frozenset("0oO8Q@°º·.。○◯●◎口日回①②③④⑤⑥⑦⑧⑨⑩")


@dataclass(frozen=True)
class DetMeta:
    """Where one image sits inside a detection batch."""

    orig_h: int
    orig_w: int
    resized_h: int  # valid region of the batch tensor (top-left aligned)
    resized_w: int


@dataclass(frozen=True)
class DetResult:
    """Detected text quads (reading order) and their DB box scores."""

    quads: list[Quad]
    scores: list[float]


@dataclass(frozen=True)
class RecBatch:
    """One recognition input tensor and the crop index of each of its rows."""

    tensor: F32  # (B, 3, 48, W)
    indices: list[int]


# --- detection preprocessing -----------------------------------------------------
def _round32(value: int) -> int:
    """Round to the nearest multiple of 32 (Python banker's rounding, as the reference), but
    never to 0: a strip 1 px high would otherwise round to 0 and divide by zero below."""
    return max(32, int(round(value / 32) * 32))


def det_target_size(
    h: int,
    w: int,
    limit_side_len: int = DET_LIMIT_SIDE_LEN,
    limit_type: str = DET_LIMIT_TYPE,
    max_side_len: int = MAX_SIDE_LEN,
    min_side_len: int = MIN_SIDE_LEN,
) -> tuple[int, int]:
    """Detector input (h, w): RapidOCR's global bound resize, then DetPreProcess.resize.

    limit_type "min" (reference): upscale until the short side >= limit; "max": downscale
    until the long side <= limit; "long": scale so the long side == limit. Every side of the
    result is a multiple of 32, at least 32.
    """
    if min(h, w) < 1:
        raise ValueError(f"no detector size for an empty {h}x{w} image")
    if max(h, w) > max_side_len:
        r = max_side_len / max(h, w)
        h, w = _round32(int(h * r)), _round32(int(w * r))
    if min(h, w) < min_side_len:
        r = min_side_len / min(h, w)
        h, w = _round32(int(h * r)), _round32(int(w * r))
    if limit_type == "max":
        r = limit_side_len / max(h, w) if max(h, w) > limit_side_len else 1.0
    elif limit_type == "long":  # PaddleOCR "resize_long": long side == limit, up or down
        r = limit_side_len / max(h, w)
    else:
        r = limit_side_len / min(h, w) if min(h, w) < limit_side_len else 1.0
    return _round32(int(h * r)), _round32(int(w * r))


def det_resize(
    image: U8Image,
    limit_side_len: int = DET_LIMIT_SIDE_LEN,
    limit_type: str = DET_LIMIT_TYPE,
    max_side_len: int = MAX_SIDE_LEN,
) -> tuple[U8Image, DetMeta]:
    """Resize one photo for the detector (each side a multiple of 32); runs per photo."""
    rh, rw = det_target_size(
        image.shape[0], image.shape[1], limit_side_len, limit_type, max_side_len
    )
    resized = np.asarray(cv2.resize(image, (rw, rh)), dtype=np.uint8)
    return resized, DetMeta(image.shape[0], image.shape[1], rh, rw)


def det_batch(resized: Sequence[U8Image]) -> F32:
    """Pad resized photos into one NCHW batch, normalised as ``(x / 255 - 0.5) / 0.5`` (BGR).

    Padding replicates the last row/column: a constant border makes DB see a small photo as
    one big "text block".
    """
    bh = max(im.shape[0] for im in resized)
    bw = max(im.shape[1] for im in resized)
    batch = np.empty((len(resized), bh, bw, 3), dtype=np.uint8)
    for i, im in enumerate(resized):
        rh, rw = im.shape[:2]
        batch[i, :rh, :rw] = im
        batch[i, :rh, rw:] = batch[i, :rh, rw - 1 : rw]
        batch[i, rh:] = batch[i, rh - 1 : rh]
    tensor = batch.transpose(0, 3, 1, 2).astype(np.float32)
    tensor *= np.float32(2.0 / 255.0)
    tensor -= np.float32(1.0)
    return tensor


# --- detection postprocessing ----------------------------------------------------
def _rect_corners(rects: F32) -> F32:
    """Vectorised cv2.boxPoints for rows (cx, cy, w, h, angle_deg) -> (N, 4, 2)."""
    cx, cy, w, h, ang = (rects[:, k] for k in range(5))
    rad = np.deg2rad(ang)
    b, a = np.cos(rad) * 0.5, np.sin(rad) * 0.5
    p0 = np.stack([cx - a * h - b * w, cy + b * h - a * w], axis=1)
    p1 = np.stack([cx + a * h - b * w, cy - b * h - a * w], axis=1)
    centre = np.stack([cx, cy], axis=1)
    return np.stack([p0, p1, 2 * centre - p0, 2 * centre - p1], axis=1).astype(np.float32)


def order_quads(pts: F32) -> F32:
    """Order (N, 4, 2) corner sets as tl, tr, br, bl (two left-most by x, then by y)."""
    by_x = np.take_along_axis(pts, np.argsort(pts[..., 0], axis=1, kind="stable")[..., None], 1)
    left, right = by_x[:, :2], by_x[:, 2:]
    lswap = (left[:, 0, 1] > left[:, 1, 1])[:, None]
    rswap = (right[:, 0, 1] > right[:, 1, 1])[:, None]
    tl = np.where(lswap, left[:, 1], left[:, 0])
    bl = np.where(lswap, left[:, 0], left[:, 1])
    tr = np.where(rswap, right[:, 1], right[:, 0])
    br = np.where(rswap, right[:, 0], right[:, 1])
    return np.stack([tl, tr, br, bl], axis=1).astype(np.float32)


def _box_score_fast(prob: F32, box: F32) -> float:
    """Mean probability inside a quad (rapidocr DBPostProcess.box_score_fast)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (box - np.array([x0, y0], dtype=np.float32)).astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _candidate_rects(prob: F32, thresh: float, max_candidates: int) -> F32:
    """Binarise + 2x2 dilate the map; min-area rects (cx, cy, w, h, angle) of its contours."""
    seg = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(seg, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    rects = [cv2.minAreaRect(c) for c in contours[:max_candidates]]
    out = np.array([[c[0], c[1], s[0], s[1], a] for c, s, a in rects], dtype=np.float32)
    return out.reshape(-1, 5)


def sort_quads(quads: F32) -> npt.NDArray[np.intp]:
    """Reading order as the reference: by top-left y, rows split at dy >= 10, then by x."""
    if len(quads) == 0:
        return np.zeros(0, dtype=np.intp)
    y_order = np.argsort(quads[:, 0, 1], kind="stable")
    line_ids = np.concatenate([[0], np.cumsum(np.diff(quads[y_order, 0, 1]) >= SORT_Y_TOL)])
    return y_order[np.lexsort((quads[y_order, 0, 0], line_ids))]


def _map_boxes(
    prob: F32,
    meta: DetMeta,
    thresh: float,
    box_thresh: float,
    unclip_ratio: float,
    max_candidates: int,
) -> DetResult:
    """DB boxes of one image's valid probability map, in original pixel coordinates."""
    rects = _candidate_rects(prob, thresh, max_candidates)
    rects = rects[np.minimum(rects[:, 2], rects[:, 3]) >= DB_MIN_SIZE]
    corners = order_quads(_rect_corners(rects))
    scores = np.array([_box_score_fast(prob, c) for c in corners], dtype=np.float32)
    keep = scores >= box_thresh
    rects, scores = rects[keep], scores[keep]
    # unclip: growing a rectangle by d (round joins) has a min-area rect of (w+2d, h+2d)
    w, h = rects[:, 2], rects[:, 3]
    dist = (w * h * unclip_ratio) / (2.0 * (w + h))
    rects[:, 2:4] += 2.0 * dist[:, None]
    ok = np.minimum(rects[:, 2], rects[:, 3]) >= DB_MIN_SIZE + 2
    rects, scores = rects[ok], scores[ok]
    quads = order_quads(_rect_corners(rects))
    scale = np.array([meta.orig_w / meta.resized_w, meta.orig_h / meta.resized_h], np.float32)
    quads = np.round(quads * scale)
    quads[..., 0] = np.clip(quads[..., 0], 0, meta.orig_w - 1)
    quads[..., 1] = np.clip(quads[..., 1], 0, meta.orig_h - 1)
    side_w = np.linalg.norm(quads[:, 0] - quads[:, 1], axis=1).astype(np.int32)
    side_h = np.linalg.norm(quads[:, 0] - quads[:, 3], axis=1).astype(np.int32)
    big = (side_w > 3) & (side_h > 3)
    quads, scores = quads[big].astype(np.float32), scores[big]
    order = sort_quads(quads)
    return DetResult([quads[i] for i in order], [float(scores[i]) for i in order])


def det_postprocess(
    prob: F32,
    metas: Sequence[DetMeta],
    thresh: float = DB_THRESH,
    box_thresh: float = DB_BOX_THRESH,
    unclip_ratio: float = DB_UNCLIP_RATIO,
    max_candidates: int = DB_MAX_CANDIDATES,
) -> list[DetResult]:
    """DB postprocessing of a [B, 1, H, W] probability batch: quads and box scores per photo."""
    return [
        _map_boxes(
            np.ascontiguousarray(prob[i, 0, : m.resized_h, : m.resized_w]),
            m,
            thresh,
            box_thresh,
            unclip_ratio,
            max_candidates,
        )
        for i, m in enumerate(metas)
    ]


# --- cropping and angle classification ------------------------------------------
def crop_lines(image: U8Image, quads: Sequence[Quad]) -> list[U8Image]:
    """Perspective-rectify each quad; crops with h/w >= 1.5 are rotated 90 deg CCW."""
    crops: list[U8Image] = []
    for quad in quads:
        pts = np.asarray(quad, dtype=np.float32)
        # at least 1 px: a 0 side is an empty crop, and a division by zero in rec_preprocess
        cw = max(1, int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
        ch = max(1, int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
        dst = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
        mat = cv2.getPerspectiveTransform(pts, dst)
        crop = cv2.warpPerspective(
            image, mat, (cw, ch), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        if crop.shape[0] / crop.shape[1] >= 1.5:
            crop = np.rot90(crop)
        crops.append(np.ascontiguousarray(crop, dtype=np.uint8))
    return crops


def _resize_norm(crop: U8Image, height: int, width: int, pad_to: int) -> F32:
    """Aspect-preserving resize to `height` (width capped), normalise, right-pad with 0."""
    ratio = crop.shape[1] / crop.shape[0]
    rw = max(1, min(width, math.ceil(height * ratio)))
    out = np.zeros((3, height, pad_to), dtype=np.float32)
    resized = cv2.resize(crop, (rw, height)).astype(np.float32)
    out[:, :, :rw] = resized.transpose(2, 0, 1) * np.float32(2.0 / 255.0) - np.float32(1.0)
    return out


# --- recognition -------------------------------------------------------------------
REC_WIDTH_STEP = 32  # a crop's padded width is its own, rounded up to this


def rec_width(crop: U8Image, min_width: int = REC_MIN_WIDTH) -> int:
    """The padded width of ``crop`` at the recogniser's height: its own width there (at least
    ``min_width``), rounded up to REC_WIDTH_STEP. It depends on the crop alone: padded to its
    batch's widest crop, a line read "Here," alone and "Here" beside a wider one."""
    height, width = int(crop.shape[0]), int(crop.shape[1])
    natural = max(min_width, math.ceil(REC_HEIGHT * width / height))
    return -(-natural // REC_WIDTH_STEP) * REC_WIDTH_STEP


def rec_preprocess(
    crops: Sequence[U8Image], batch_size: int = REC_BATCH, min_width: int = REC_MIN_WIDTH
) -> list[RecBatch]:
    """Pack crops into (B, 3, 48, W) batches of crops of one padded width (``rec_width``), so
    a line reads the same whatever else is in its batch."""
    by_width: dict[int, list[int]] = {}
    for index, crop in enumerate(crops):
        by_width.setdefault(rec_width(crop, min_width), []).append(index)
    batches: list[RecBatch] = []
    for width, indices in sorted(by_width.items()):
        for start in range(0, len(indices), batch_size):
            group = indices[start : start + batch_size]
            tensor = np.stack([_resize_norm(crops[i], REC_HEIGHT, width, width) for i in group])
            batches.append(RecBatch(tensor, group))
    return batches


def ctc_decode(probs: F32, charset: Sequence[str]) -> list[tuple[str, float]]:
    """Greedy CTC: argmax, merge repeats, drop blank (index 0); score = mean kept prob."""
    idx = probs.argmax(axis=2)
    conf = np.take_along_axis(probs, idx[..., None], axis=2)[..., 0]
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    out: list[tuple[str, float]] = []
    for row_idx, row_conf, row_keep in zip(idx, conf, keep, strict=False):
        text = "".join(charset[i] for i in row_idx[row_keep].tolist())
        score = float(row_conf[row_keep].mean()) if row_keep.any() else 0.0
        out.append((text, score))
    return out


def charset_from_text(dictionary: str) -> list[str]:
    """Dictionary text (one char per line) -> CTC charset: 'blank' + chars + ' '."""
    return ["blank", *dictionary.splitlines(), " "]


def load_charset(source: object) -> list[str]:
    """Character list as the reference builds it, offline.

    ``source`` is an onnxruntime InferenceSession (uses the model's metadata_props
    key ``character``, as rapidocr's OrtInferenceSession does), a metadata mapping,
    or a path to a ``ppocr_keys``-style .txt file (used for non-ONNX engines).
    """
    get_meta = getattr(source, "get_modelmeta", None)
    if get_meta is not None:
        source = get_meta().custom_metadata_map
    if isinstance(source, dict):
        if CHARSET_META_KEY not in source:
            raise KeyError(f"model metadata has no {CHARSET_META_KEY!r} key")
        return charset_from_text(str(source[CHARSET_META_KEY]))
    with Path(str(source)).open("rb") as fh:
        lines = [ln.decode("utf-8").strip("\n").strip("\r\n") for ln in fh]
    return ["blank", *lines, " "]


def looks_like_text(text: str, score: float, min_score: float = 0.8, min_chars: int = 2) -> bool:
    """Heuristic false-positive filter for photos (not in the reference pipeline).

    Keeps a line if its rec score >= min_score, it has >= min_chars non-space
    characters and they are not all "round" glyphs (0, o, O, 8, ...) that DB+CTC
    hallucinate on eyes, coins and wheels.
    """
    chars = [c for c in text if not c.isspace()]
    return score >= min_score and len(chars) >= min_chars and not set(chars) <= ROUND_GLYPHS
