"""INT8 by onnxruntime's static quantization: QDQ, per channel, calibrated on real photos.

Run at `darkroom models build` for a manifest with ``[quantize]``: the fp32 graph its converter
wrote becomes ``model.onnx`` with QuantizeLinear / DequantizeLinear pairs around its weights and
activations (s8 weights, u8 activations), which onnxruntime's CPU and TensorRT providers fuse
into integer kernels. The calibration inputs are the runner's own preprocessing of sample
photos (``DeclaredRunner.calibration_inputs``), so the ranges are those the model will see.

Two steps keep every bundled model valid: graphs below opset 13 are converted to 13 first (a
per-channel DequantizeLinear needs its ``axis`` attribute, which opset 13 introduced: without
it the PP-OCR detector, opset 11, came out as a graph onnxruntime refused to load), and
onnxruntime's ``quant_pre_process`` (shape inference, constant folding) runs before.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

MIN_OPSET = 13  # DequantizeLinear's per-channel axis
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


class _Inputs(CalibrationDataReader):  # type: ignore[misc]  # untyped onnxruntime
    """One calibration input at a time, under the graph's input name."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter([{name: x} for x in inputs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_qdq(
    fp32: Path,
    target: Path,
    inputs: Sequence[np.ndarray],
    *,
    per_channel: bool = True,
    method: str = "minmax",
) -> None:
    """Write the INT8 QDQ form of the graph at ``fp32`` to ``target``, calibrated on ``inputs``
    (tensors for the graph's first input, as the runner makes them)."""
    if not inputs:
        raise ValueError("quantization needs at least one calibration input")
    with tempfile.TemporaryDirectory(prefix="darkroom-int8-") as scratch:
        model = onnx.load(str(fp32))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        source = fp32
        if opset < MIN_OPSET:
            source = Path(scratch) / "opset13.onnx"
            onnx.save(version_converter.convert_version(model, MIN_OPSET), str(source))
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        name = model.graph.input[0].name
        with _quiet_root_logger():  # it logs every rescaled bias at INFO, hundreds of lines
            quantize_static(
                str(prepared),
                str(target),
                _Inputs(name, inputs),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[method],
            )
    onnx.checker.check_model(str(target))
