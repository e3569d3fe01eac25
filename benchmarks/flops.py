"""Each production model's arithmetic, and how fast this machine does it: GFLOP/s at its batch.

    .venv/bin/python -m benchmarks.flops            # ~1 min: every production model
    .venv/bin/python -m benchmarks.flops --smoke    # ~15 s: batch 1, one timed run

The work of a model is counted from its graph (streams' built ONNX file): two operations per
multiply-add of every Conv, ConvTranspose, Gemm and MatMul, with shapes inferred for the input
the engine gives it (the classifier's 224 px crop, a 960x720 photo for the OCR detector, a
48x320 line for the recogniser); what else a graph does (activations, pooling, resizes) is left
out, so the rate is the convolutions' and matrix products'. Each model then runs in the
engine's own session settings, at the batch the engine gives it, on random input: the median of
the timed runs. The int8 moderation model's operations are int8 (GOP/s).

The machine's peak is an assumption: cores x 32 FP32 operations a cycle (AVX2: two 8-wide
fused multiply-adds) x the clock /proc/cpuinfo reports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference

from benchmarks import out_of, output_args, production_settings, ran_on, write_results
from benchmarks.engine import machine
from streams.engine.runners import session_config
from streams.inference.sessions import ModelSession
from streams.logs import configure_logging
from streams.models.manifest import ModelManifest, Task
from streams.models.repository import ModelRepository

COUNTED = {"Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger"}


@dataclass(frozen=True)
class Case:
    """One model's input as the engine gives it."""

    shape: tuple[int, ...]  # one image's input tensor, without the batch
    batch: int


def case_of(manifest: ModelManifest, max_batch: int) -> Case:
    """The input and batch the engine runs ``manifest`` with."""
    if manifest.task is Task.OCR_DETECT:
        return Case((3, 736, 960), 1)  # a 4:3 photo at its 960 px limit; one a run (activations)
    if manifest.task is Task.OCR_RECOGNIZE:
        return Case((3, 48, 320), int(manifest.params.get("batch", 8)))
    assert manifest.input is not None, manifest.key
    height, width = manifest.input.size
    if manifest.input.layout == "NHWC":
        return Case((height, width, 3), max_batch)
    return Case((3, height, width), max_batch)


def operations(path: Path, shape: tuple[int, ...]) -> int:
    """Operations (2 a multiply-add) of the counted nodes for one input of ``shape``."""
    model = onnx.load(str(path))
    first = model.graph.input[0]
    dims = first.type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, *shape), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = size
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    # a quantized graph feeds its weights through DequantizeLinear: take the stored shape
    for node in inferred.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes.setdefault(node.output[0], shapes[node.input[0]])
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED:
            continue
        out = shapes.get(node.output[0])
        weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if not out or not weight or 0 in out:
            continue
        if node.op_type.startswith("Conv"):
            # output N x Cout x H x W, weight Cout x Cin/groups x kh x kw: a MAC per weight, per
            # output position
            total += int(np.prod(out[:1] + out[2:])) * int(np.prod(weight))
        else:
            total += int(np.prod(out)) * int(weight[0] if len(weight) == 2 else weight[-2])
    return 2 * total


def timed(session: ModelSession, case: Case, runs: int, int_input: bool) -> float:
    """Median seconds of one run at the case's batch, after a warm-up."""
    rng = np.random.default_rng(0)
    array = rng.random((case.batch, *case.shape), dtype=np.float32)
    if int_input:
        array = (array * 255).astype(np.uint8)
    feeds = {session.input_names[0]: array}
    session.run(feeds)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(feeds)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def peak_gflops() -> float | None:
    """cores x 32 FP32 operations a cycle x the reported clock (the module docstring)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return None
    clocks = [float(line.split(":")[1]) for line in text.splitlines() if "cpu MHz" in line]
    if not clocks:
        return None
    return (os.cpu_count() or 1) * 32 * max(clocks) / 1000.0


def measure(repository: ModelRepository, smoke: bool) -> list[dict[str, Any]]:
    settings = production_settings()
    config = session_config(settings.engine, repository)
    rows = []
    for manifest in repository.production():
        built = repository.require_built(manifest).model
        case = case_of(manifest, 1 if smoke else settings.engine.max_batch)
        if smoke:
            case = Case(case.shape, 1)
        work = operations(built, case.shape)
        session = ModelSession(built, config, manifest.key)
        kind = session.session.get_inputs()[0].type
        seconds = timed(session, case, 1 if smoke else 7, "uint8" in kind)
        rows.append(
            {
                "model": manifest.name,
                "input": "x".join(map(str, case.shape)),
                "batch": case.batch,
                "gflop_per_image": round(work / 1e9, 3),
                "ms_per_image": round(1000.0 * seconds / case.batch, 2),
                "gflops": round(work * case.batch / seconds / 1e9, 1),
                "int8": manifest.quantize is not None or manifest.name.endswith("_int8"),
            }
        )
        print(rows[-1], flush=True)
    return rows


def report(result: dict[str, Any]) -> str:
    peak = result["peak_gflops"]
    lines = [
        "# Each model's arithmetic rate",
        "",
        ran_on("flops", result["machine"])
        + "; peak assumed "
        + (f"{peak:.0f} GFLOP/s (FP32 FMA)." if peak else "unknown."),
        "",
        "| model | input | batch | GFLOP an image | ms an image | GFLOP/s | of the peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        share = f"{row['gflops'] / peak:.0%}" if peak else "?"
        unit = " (int8 GOP/s)" if row["int8"] else ""
        lines.append(
            f"| {row['model']} | {row['input']} | {row['batch']} | {row['gflop_per_image']} | "
            f"{row['ms_per_image']} | {row['gflops']}{unit} | {share} |"
        )
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, smoke="batch 1, one timed run a model")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    settings = production_settings()
    repository = ModelRepository.from_settings(settings)
    rows = measure(repository, args.smoke)
    result = {"machine": machine(), "peak_gflops": peak_gflops(), "rows": rows}
    write_results("flops", result, report(result), out_of(args))


if __name__ == "__main__":
    main()
