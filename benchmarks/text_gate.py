"""OCR behind a learned text gate: trained on one photo set, judged on another against full OCR.

    .venv/bin/python -m benchmarks.text_gate                # ~6 min: train, judge, report
    .venv/bin/python -m benchmarks.text_gate --write-gate   # and ship it: models/ppocr_det_gated/
    .venv/bin/python -m benchmarks.text_gate --smoke        # ~40 s: that it runs

Training: the production engine (classifier and OCR) over benchmarks.photoset.experiment_set
(480 photos, seed 99: scikit-image's photos cropped, mirrored, re-exposed, a third with a line
of text pasted in) and the 16 sample photos. Each photo gives what photos.enriched carries: its
embedding and the lines the full detector read (the gate's label), which is what
``darkroom models train-gate`` reads from the topic. Kept in results/text_gate_training.npz.

Judging: on the shadow experiments' own set (experiment_set(240, seed 12), none of it trained
on), the engine with every production model, once with the full detector serving and once
with the gated one (each promoted in a copy of the model repository), side by side: photos/s
for libraries with 0%, 20% and 100% of photos with text (the judged photos split by what full
OCR found), the gated run's line recall against full OCR (lines read exactly, as the shadow
experiments measure it) and the share of photos without text it still sends to the detector.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import RESULTS, out_of, output_args, production_settings, ran_on, write_results
from benchmarks.engine import machine
from benchmarks.photoset import augmented, experiment_set
from streams.engine import Enricher, PhotoInput
from streams.engine.results import Enriched
from streams.experiments.promote import promote
from streams.inference import agreement
from streams.inference.text_gate import TextGate, train
from streams.logs import configure_logging
from streams.models.build import build_model
from streams.models.repository import ModelRepository
from streams.samples import PHOTOS, encode_jpeg, load_photo

GATED = "ppocr_det_gated"
FULL = "ppocr_det"  # the detector without a gate: the labels, and what the gate is judged against
GATE_FILE = Path(__file__).parents[1] / "models" / GATED / "text_gate.json"
TRAINING = RESULTS / "text_gate_training.npz"
SHARES = (0.0, 0.2, 1.0)  # of photos with text in a library
BATCH = 16


@dataclass(frozen=True)
class Sizes:
    """How many photos each part uses."""

    train: int = 480
    copies: int = 4  # of each sample photo
    judge: int = 240
    per_share: int = 80  # photos in each library of SHARES


SMOKE = Sizes(train=30, copies=1, judge=24, per_share=8)


def enrich(enricher: Enricher, photos: Sequence[tuple[str, bytes]]) -> tuple[list[Enriched], float]:
    """Every photo through ``enricher`` in batches; the results and the seconds it took."""
    results: list[Enriched] = []
    started = time.perf_counter()
    for start in range(0, len(photos), BATCH):
        chunk = [PhotoInput(n, data, "u") for n, data in photos[start : start + BATCH]]
        for result in enricher.complete(enricher.submit(chunk)):
            assert isinstance(result, Enriched), result
            results.append(result)
    return results, time.perf_counter() - started


def training_photos(count: int, copies: int) -> list[tuple[str, bytes]]:
    """The experiment photo set under another seed, and ``copies`` augmented copies of each
    sample photo (a sign, a page of text: the worker's own checks read them), so that no
    photo is alone of its kind: a threshold chosen out of fold would stoop to one."""
    rng = np.random.default_rng(98)
    samples = [
        (f"sample-{name}-{i}", encode_jpeg(augmented(load_photo(name), rng, None)))
        for name in PHOTOS
        for i in range(copies)
    ]
    return experiment_set(count, seed=99) + samples


def collect(repository: ModelRepository, photos: Sequence[tuple[str, bytes]]) -> list[Enriched]:
    """The fields the stream would carry for ``photos`` (classifier and full OCR only), from a
    repository where the full detector serves (``serving``)."""
    settings = production_settings()
    engine = settings.engine.model_copy(update={"models": f"mobilenet_v2,{FULL},ppocr_rec"})
    enricher = Enricher(engine, repository)
    try:
        return enrich(enricher, photos)[0]
    finally:
        enricher.close()


def examples(results: Sequence[Enriched]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(embeddings, text lines read) of enriched photos."""
    embeddings = np.asarray([r.fields["embedding"] for r in results], np.float32)
    lines = np.asarray([len(r.fields.get("ocr") or []) for r in results], np.int32)
    return embeddings, lines


def serving(
    models: Path, cache: Path, scratch: Path, name: str, gate: TextGate | None = None
) -> ModelRepository:
    """A copy of the model repository where ``name`` serves its task (promoted in the copy
    when it does not in the project's), with ``gate`` in the gated detector's folder."""
    copy = scratch / name
    shutil.copytree(models, copy)
    if gate is not None:
        gate.save(copy / GATED / "text_gate.json")
    repository = ModelRepository(copy, cache)
    if repository.get(name).is_variant:
        promote(repository, name)
        repository = ModelRepository(copy, cache)
    return repository


def libraries(
    photos: Sequence[tuple[str, bytes]], full: Sequence[Enriched], size: int
) -> dict[float, list[int]]:
    """For each share of SHARES, ``size`` photos (indices) with that share carrying text."""
    with_text = [i for i, r in enumerate(full) if r.fields.get("ocr")]
    without = [i for i, r in enumerate(full) if not r.fields.get("ocr")]
    found: dict[float, list[int]] = {}
    for share in SHARES:
        texts = min(len(with_text), round(size * share))
        found[share] = with_text[:texts] + without[: min(len(without), size - texts)]
    return found


def judge(
    gate: TextGate,
    full: Enricher,
    gated: Enricher,
    photos: Sequence[tuple[str, bytes]],
    size: int,
) -> dict[str, Any]:
    """Full and gated engines side by side on the judged photos, by share of photos with text."""
    everything, _ = enrich(full, photos)
    gated_all, _ = enrich(gated, photos)
    lines = found = 0
    for ours, theirs in zip(everything, gated_all, strict=True):
        production = ours.fields.get("ocr") or []
        read = agreement.line_recall(production, theirs.fields.get("ocr") or [])
        lines, found = lines + len(production), found + round(read * len(production))
    rows = []
    for share, indices in libraries(photos, everything, size).items():
        chosen = [photos[i] for i in indices]
        _, full_s = enrich(full, chosen)
        _, gated_s = enrich(gated, chosen)
        rows.append(
            {
                "share_with_text": share,
                "photos": len(chosen),
                "full_photos_per_s": round(len(chosen) / full_s, 3),
                "gated_photos_per_s": round(len(chosen) / gated_s, 3),
                "speed_up": round(full_s / gated_s, 3),
            }
        )
    without = [r.fields for r in everything if not r.fields.get("ocr")]
    kept = sum(len(r.fields.get("ocr") or []) for r in everything if gate.passes(r.fields))
    return {
        "photos": len(photos),
        "with_text": len(everything) - len(without),
        "lines": lines,
        # lines the gated engine read exactly as full OCR did (what the shadow measures: the
        # recogniser's batches differ too), and lines on the photos the gate passed
        "line_recall": round(found / lines, 4) if lines else None,
        "gate_line_recall": round(kept / lines, 4) if lines else None,
        # photos full OCR found no text in that the gate still sends to the detector
        "passed_without_text": round(sum(map(gate.passes, without)) / max(1, len(without)), 4),
        "libraries": rows,
    }


def report(result: dict[str, Any]) -> str:
    trained, judged = result["trained"], result["judged"]
    lines = [
        "# OCR behind a learned text gate",
        "",
        ran_on("text_gate", result["machine"]) + ".",
        "",
        f"Trained on {trained['photos']} photos ({trained['with_text']} with text, "
        f"{trained['lines']} lines), out of fold: line recall "
        f"{trained['line_recall_out_of_fold']:.3f} (target {trained['line_recall_target']}), "
        f"{trained['passed_without_text_out_of_fold']:.1%} of photos without text passed.",
        "",
        f"Judged on {judged['photos']} other photos ({judged['with_text']} with text, "
        f"{judged['lines']} lines): the gate passed photos holding "
        f"**{judged['gate_line_recall']}** of full OCR's lines, and the gated engine read "
        f"{judged['line_recall']} of them exactly as full OCR did; "
        f"photos without text passed to the detector **{judged['passed_without_text']:.1%}**.",
        "",
        "| photos with text | photos | full OCR photos/s | gated photos/s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for row in judged["libraries"]:
        lines.append(
            f"| {row['share_with_text']:.0%} | {row['photos']} | {row['full_photos_per_s']} | "
            f"{row['gated_photos_per_s']} | {row['speed_up']}x |"
        )
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-gate", action="store_true", help=f"write {GATE_FILE}")
    parser.add_argument("--line-recall", type=float, default=0.975, help="the gate's target")
    output_args(parser, smoke=f"{SMOKE.train} training and {SMOKE.judge} judged photos")
    args = parser.parse_args(argv)
    if args.smoke and args.write_gate:
        parser.error("--smoke trains on too few photos to ship: no --write-gate")
    configure_logging("WARNING", "console")
    sizes = SMOKE if args.smoke else Sizes()
    out = out_of(args)
    settings = production_settings()
    project = ModelRepository.from_settings(settings)
    build_model(project, project.get(GATED))  # a copy of ppocr_det's file: seconds
    models, cache = settings.paths.models, project.cache
    with tempfile.TemporaryDirectory(prefix="darkroom-gate-") as folder:
        scratch = Path(folder)
        full_models = serving(models, cache, scratch, FULL)
        train_set = collect(full_models, training_photos(sizes.train, sizes.copies))
        embeddings, lines = examples(train_set)
        folds = 3 if args.smoke else 5
        gate = train(embeddings, lines.tolist(), line_recall=args.line_recall, folds=folds)
        if out is not None:  # the training data, as the topic would have given it
            out.mkdir(parents=True, exist_ok=True)
            kept = embeddings.astype(np.float16)
            np.savez_compressed(out / TRAINING.name, embeddings=kept, lines=lines)
        if args.write_gate:
            gate.save(GATE_FILE)
        full = Enricher(settings.engine, full_models)
        gated = Enricher(settings.engine, serving(models, cache, scratch, GATED, gate))
        try:
            judged = judge(gate, full, gated, experiment_set(sizes.judge, seed=12), sizes.per_share)
        finally:
            full.close()
            gated.close()
    result = {
        "machine": machine(),
        "trained": dict(gate.trained),
        "judged": judged,
    }
    write_results("text_gate", result, report(result), out)


if __name__ == "__main__":
    main()
