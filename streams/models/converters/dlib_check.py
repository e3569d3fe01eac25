"""The build-time check of a converted dlib network: the same chips through dlib and ONNX.

dlib (the ``dlib-bin`` wheel of the ``build`` extra) is imported only here and only at build;
workers never load it. The chips are seeded noise and gradients, not faces: the check is that
the graph computes dlib's function, every weight in play, which needs no face. The test suite
checks real aligned faces (tests/models/test_dlib_resnet.py; 3.6e-7 when written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import structlog

# dlib's input_rgb_image_sized<150> subtracts these and divides by 256 (the file stores them too)
MEAN_RGB: Final = np.array([122.782, 117.001, 104.298], dtype=np.float32)
MAX_ABS_DIFF: Final = 1e-4  # measured 3.6e-7 on this CPU; other kernels round differently

log = structlog.get_logger(__name__)
Array = npt.NDArray[Any]


class NotCheckedError(ImportError):
    """dlib is not installed, so the converted graph cannot be compared with it."""


def check_chips(size: int = 150) -> list[Array]:
    """Four uint8 RGB chips: noise, a gradient, and each blurred into the other."""
    rng = np.random.default_rng(150)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    gradient = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (size, 1)), ramp[::-1, None] * np.ones(size)],
        axis=-1,
    )
    mixed = (0.5 * noise + 0.5 * gradient).astype(np.uint8)
    return [noise, gradient.astype(np.uint8), mixed, np.ascontiguousarray(noise[::-1])]


def onnx_descriptors(model: Path, chips: list[Array]) -> Array:
    """The ONNX graph's raw 128-d descriptors of ``chips`` (uint8 RGB, one batch)."""
    batch = (np.stack(chips).astype(np.float32) - MEAN_RGB) / np.float32(256)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = session.run(
        ["embedding"], {"input": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))}
    )
    return np.asarray(out)


def check_against_dlib(source: Path, model: Path) -> float:
    """Max absolute difference between dlib's and the graph's descriptors of ``check_chips``;
    ValueError over ``MAX_ABS_DIFF``, NotCheckedError without dlib."""
    try:
        import dlib  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise NotCheckedError("dlib is not installed: pip install dlib-bin==20.0.1.post1") from None
    chips = check_chips()
    reference = dlib.face_recognition_model_v1(str(source))
    expected = np.array([np.array(reference.compute_face_descriptor(c)) for c in chips])
    difference = float(np.abs(onnx_descriptors(model, chips) - expected).max())
    if difference > MAX_ABS_DIFF:
        raise ValueError(
            f"the ONNX graph differs from dlib by {difference:.2e} (more than {MAX_ABS_DIFF:g})"
        )
    log.info("checked against dlib", max_abs_difference=f"{difference:.1e}", chips=len(chips))
    return difference
