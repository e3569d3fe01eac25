"""OCR: PP-OCR text-line detection (DB) then recognition (CTC), two models working as one step.

Detection runs on the photo shrunk so its long side is at most ``limit_side_len`` (960 by
default: rapidocr's default of upscaling the short side to 736 was 3-5x slower on photos and
misread round shapes as "0" and "8"); line crops are cut from the decoded photo, so small text
stays readable. Lines must pass ``looks_like_text`` (recogniser score, length, not only round
glyphs), which kept every correct line and no false one on the sample photos.

A detector's manifest may name a learned text gate (``text_gate``, a file of its folder:
streams/inference/text_gate.py): only photos it passes get detection and recognition, judged
from the embedding the classifier put in the photo's fields (OCR runs after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from streams.imaging.decode import DecodedPhoto
from streams.inference import agreement
from streams.inference import ocr_pipeline as pp
from streams.inference.agreement import Figures
from streams.inference.preprocess import Image
from streams.inference.sessions import ModelSession, SessionConfig
from streams.inference.tasks.base import Array, DeclaredRunner, Fields, Work
from streams.inference.text_gate import TextGate
from streams.models.manifest import ModelManifest, Task
from streams.models.repository import ModelRepository


class OcrRunner(DeclaredRunner):
    """Text lines with quads in photo pixels, from an ocr_detect and an ocr_recognize model."""

    # One step: quads alone are useless in an event, and recognition needs the quads' crops.
    tasks = (Task.OCR_DETECT, Task.OCR_RECOGNIZE)
    fields = ("ocr",)
    figures = ("character_error_rate", "line_recall", "text_found_agreement")

    @classmethod
    def compare(cls, production: Fields, variant: Fields) -> Figures:
        """Character error rate of the variant's text (in reading order) against production's,
        the share of production's lines read exactly, and whether both found text or neither."""
        ours, theirs = production.get("ocr") or [], variant.get("ocr") or []
        return {
            "character_error_rate": agreement.character_error_rate(
                agreement.reading_order_text(ours), agreement.reading_order_text(theirs)
            ),
            "line_recall": agreement.line_recall(ours, theirs),
            "text_found_agreement": agreement.agree(bool(ours), bool(theirs)),
        }

    def __init__(
        self,
        detector: ModelManifest,
        recogniser: ModelManifest,
        repository: ModelRepository,
        config: SessionConfig,
    ) -> None:
        self.detector, self.recogniser = detector, recogniser
        self.manifests = [detector, recogniser]
        self.name = f"{detector.name}+{recogniser.name}"
        self.provenance = {"name": self.name, "version": f"{detector.version}+{recogniser.version}"}
        self.det = ModelSession(repository.require_built(detector).model, config, detector.key)
        self.rec = ModelSession(repository.require_built(recogniser).model, config, recogniser.key)
        self.session = self.det
        self.charset = pp.load_charset(self.rec.session)
        det, rec = detector.params, recogniser.params
        self.limit_side_len = int(det.get("limit_side_len", 960))
        self.limit_type = str(det.get("limit_type", "max"))
        # A cascade: detection at this (low) long side first; a photo with no line there gets
        # no full detection and no recognition (most photos in a library carry no text).
        gate = det.get("gate_side_len")
        self.gate_side_len = int(gate) if gate is not None else None
        learned = det.get("text_gate")
        self.text_gate = TextGate.load(detector.folder / str(learned)) if learned else None
        self.rec_batch = int(rec.get("batch", 8))
        self.rec_min_width = int(rec.get("min_width", 160))
        self.min_score = float(rec.get("min_score", 0.8))

    @classmethod
    def open(
        cls, manifests: Sequence[ModelManifest], repository: ModelRepository, config: SessionConfig
    ) -> Self:
        """The runner of a detector and a recogniser (the order of ``tasks``)."""
        detector, recogniser = manifests
        return cls(detector, recogniser, repository, config)

    @classmethod
    def calibration_inputs(cls, manifest: ModelManifest, photos: Sequence[Image]) -> list[Array]:
        """The detector's input for each photo (recognition is not quantized: its inputs are
        line crops, which only a detector's output gives)."""
        if manifest.task is not Task.OCR_DETECT:
            return super().calibration_inputs(manifest, photos)
        side = int(manifest.params.get("limit_side_len", 960))
        limit = str(manifest.params.get("limit_type", "max"))
        return [pp.det_batch([pp.det_resize(photo, side, limit)[0]]) for photo in photos]

    def needed_side(self) -> int:
        """Detection never needs more than its limit; recognition crops gain from a bit more."""
        return self.limit_side_len

    def photos_per_run(self, max_batch: int) -> int:
        """The whole batch: ``_detect`` splits its own detector runs by ``max_run_pixels``, so
        the recogniser still batches the line crops of every photo of the batch."""
        return max_batch

    def prepare(self, photo: DecodedPhoto) -> tuple[pp.U8Image, pp.DetMeta]:
        """Resize for the detector (in a decode thread)."""
        return pp.det_resize(photo.image, self.limit_side_len, self.limit_type)

    def warm_up(self) -> float:
        """Detector and recogniser once on blank input; returns seconds."""
        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        seconds = self.det.warm_up({self.det.input_names[0]: pp.det_batch([blank])})
        (batch,) = pp.rec_preprocess([blank[:48]], self.rec_batch, self.rec_min_width)
        return seconds + self.rec.warm_up({self.rec.input_names[0]: batch.tensor})

    def run(self, works: Sequence[Work]) -> list[Fields]:
        """Detect lines (photos of one detector size batched together), then read all crops."""
        chosen = list(range(len(works)))
        if self.text_gate is not None:
            gate = self.text_gate
            chosen = [i for i in chosen if gate.passes(works[i].fields)]
        if self.gate_side_len is not None:
            side = self.gate_side_len
            looks = self._detect([pp.det_resize(works[i].photo.image, side, "max") for i in chosen])
            chosen = [i for i, found in zip(chosen, looks, strict=True) if len(found.quads)]
        detections = self._detect([works[i].prepared[self.name] for i in chosen])
        crops: list[pp.U8Image] = []
        owners: list[tuple[int, pp.Quad]] = []
        for i, found in zip(chosen, detections, strict=True):
            work = works[i]
            for quad, crop in zip(
                found.quads, pp.crop_lines(work.photo.image, found.quads), strict=True
            ):
                crops.append(crop)
                owners.append((i, quad * np.float32(work.photo.scale)))
        lines: list[list[dict[str, Any]]] = [[] for _ in works]
        for (i, quad), (text, score) in zip(owners, self._recognise(crops), strict=True):
            if pp.looks_like_text(text, score, self.min_score):
                lines[i].append(
                    {
                        "text": text,
                        "score": score,
                        "quad": [{"x": float(x), "y": float(y)} for x, y in quad],
                    }
                )
        return [{"ocr": found} for found in lines]

    def _detect(self, prepared: list[tuple[pp.U8Image, pp.DetMeta]]) -> list[pp.DetResult]:
        """One detector run per distinct input size: padding a small photo up to a large one
        costs the large one's time (measured: batch 4 of mixed sizes ran slower than batch 1)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (resized, _) in enumerate(prepared):
            groups.setdefault(resized.shape[:2], []).append(index)
        results: list[pp.DetResult | None] = [None] * len(prepared)
        for (height, width), group in groups.items():
            size = max(1, self.max_run_pixels // (height * width))  # activation memory
            for start in range(0, len(group), size):
                indices = group[start : start + size]
                batch = pp.det_batch([prepared[i][0] for i in indices])
                (prob,) = self.det.run({self.det.input_names[0]: batch})
                found = pp.det_postprocess(prob, [prepared[i][1] for i in indices])
                for index, result in zip(indices, found, strict=True):
                    results[index] = result
        return [r for r in results if r is not None]

    def _recognise(self, crops: list[pp.U8Image]) -> list[tuple[str, float]]:
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        if not crops:
            return results
        for batch in pp.rec_preprocess(crops, self.rec_batch, self.rec_min_width):
            (probs,) = self.rec.run({self.rec.input_names[0]: batch.tensor})
            for index, decoded in zip(
                batch.indices, pp.ctc_decode(probs, self.charset), strict=True
            ):
                results[index] = decoded
        return results
