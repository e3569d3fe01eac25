"""`darkroom models build` with everything a build can need, INT8 included.

Conversion is the models layer's (streams/models/build.py); quantization needs each task's
calibration inputs, which only its runner knows how to make, so it is plugged in from here.
"""

from __future__ import annotations

from pathlib import Path

from streams.engine.runners import runner_of_task
from streams.models.build import BuildResult, build_model
from streams.models.manifest import ModelManifest
from streams.models.repository import ModelRepository
from streams.samples import load_photo


def quantize(fp32: Path, target: Path, manifest: ModelManifest) -> None:
    """The [quantize] of ``manifest``: INT8 QDQ calibrated on its sample photos."""
    # onnx is in the `build` extra: imported by a build, never by a worker or `darkroom --help`
    from streams.inference.quantize import quantize_qdq

    assert manifest.quantize is not None
    runner = runner_of_task()[manifest.task]
    photos = [load_photo(name) for name in manifest.quantize.calibration]
    quantize_qdq(
        fp32,
        target,
        runner.calibration_inputs(manifest, photos),
        per_channel=manifest.quantize.per_channel,
        method=manifest.quantize.calibrate_method,
    )


def build(repository: ModelRepository, manifest: ModelManifest, force: bool = False) -> BuildResult:
    """Build one model, quantized if its manifest says so."""
    return build_model(repository, manifest, force=force, quantizer=quantize)
