"""Running one model over a chunk of prepared photos: production's runners, whose outputs a
photo's fields take (a failing chunk re-run photo by photo to find the one to blame), and
variants, whose outputs are checked against production's contract and compared, never served
here (streams/engine/variants.py serves a canary's afterwards)."""

from __future__ import annotations

import time

from streams.engine.contract import mismatch
from streams.engine.job import Job
from streams.engine.variants import Variant, VariantRun
from streams.errors import InferenceError
from streams.inference.tasks.base import Fields, Runner
from streams.logs import get_logger

log = get_logger("darkroom.engine")


def start_variant(job: Job, variant: Variant) -> bool:
    """Open the photo's record of ``variant``; True if the variant should run on it."""
    if job.work is None or variant not in job.variants:
        return False
    production = variant.production.name
    run = VariantRun(
        variant=variant.name,
        mode=variant.mode,
        task=variant.manifest.task,
        production=variant.refs()[0],
        model=variant.refs()[1],
        provenance=dict(variant.runner.provenance),
        production_ms=job.timings_ms.get(f"infer:{production}", 0.0),
        production_batch=job.batch_of.get(production, 0),
        error=job.variant_errors.get(variant.name),
    )
    job.variant_runs[variant.name] = run
    return run.error is None


def run_variant(variant: Variant, chunk: list[Job]) -> None:
    """Like ``run_production``, but the outputs are measured against production's, not served."""
    started = time.perf_counter()
    try:
        outputs: list[Fields | BaseException] = list(
            variant.runner.run([j.work for j in chunk if j.work is not None])
        )
    except Exception as batch_error:
        log.warning("variant batch failed", variant=variant.name, error=repr(batch_error))
        outputs = [_run_one(variant.runner, job) for job in chunk]
    share = ms_since(started) / len(chunk)
    for job, output in zip(chunk, outputs, strict=True):
        assert job.work is not None
        run = job.variant_runs[variant.name]
        run.variant_ms, run.variant_batch = share, len(chunk)
        job.timings_ms[f"variant:{variant.name}"] = share
        if isinstance(output, BaseException):
            run.error = f"{variant.name}: {output!r}"
            continue
        production = {name: job.work.fields.get(name) for name in output}
        problem = mismatch(production, output)
        if problem is not None:  # downstream reads fields by shape (streams/engine/contract)
            log.warning(
                "variant output unlike production's: production served",
                variant=variant.name,
                problem=problem,
            )
            run.error = f"contract: {problem}"
            continue
        try:
            run.figures = variant.compare(production, output)
        except Exception as error:  # a bug in a comparison must not cost the photo
            log.exception("variant comparison failed", variant=variant.name)
            run.error = f"compare: {error!r}"
            continue
        run.fields = output
        run.produced_by = dict.fromkeys(provenance_keys(variant.runner, output), run.provenance)


def run_production(runner: Runner, chunk: list[Job]) -> None:
    """One runner over one chunk; on failure, photo by photo to isolate the culprit."""
    stage = f"infer:{runner.name}"
    started = time.perf_counter()
    try:
        outputs: list[Fields | BaseException] = list(
            runner.run([j.work for j in chunk if j.work is not None])
        )
    except Exception as batch_error:
        log.warning(
            "batch failed, isolating", stage=stage, size=len(chunk), error=repr(batch_error)
        )
        outputs = [_run_one(runner, job) for job in chunk]
    share = ms_since(started) / len(chunk)
    for job, output in zip(chunk, outputs, strict=True):
        job.timings_ms[stage] = share
        job.batch_of[runner.name] = len(chunk)
        if isinstance(output, BaseException):
            job.fail(InferenceError(f"{runner.name}: {output!r}"), stage)
            continue
        assert job.work is not None
        job.work.fields.update(output)
        job.produced_by.update(dict.fromkeys(provenance_keys(runner, output), runner.provenance))


def _run_one(runner: Runner, job: Job) -> Fields | BaseException:
    assert job.work is not None
    try:
        (output,) = runner.run([job.work])
    except Exception as error:
        return error
    result: Fields = output
    return result


def provenance_keys(runner: Runner, output: Fields) -> list[str]:
    """The produced_by keys of what ``runner`` filled: its field names, or its one key."""
    keys = [name for name, value in output.items() if value is not None]
    if keys and runner.provenance_key:
        keys = [runner.provenance_key]  # e.g. faces.embedding: the detector made faces
    return keys


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
