"""Converters: how a model's source file becomes ``model.onnx`` (run by `darkroom models build`).

They import onnx (and tflite2onnx) lazily: only building needs them, running does not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

Converter = Callable[[Path, Path], None]


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _mobilenet_v2_torch(source: Path, target: Path) -> None:
    from streams.models.converters import mobilenet_v2

    mobilenet_v2.convert(source, target)


def _blazeface_tflite(source: Path, target: Path) -> None:
    from streams.models.converters import blazeface_tflite

    blazeface_tflite.convert(source, target)


CONVERTERS: dict[str, Converter] = {
    "copy": _copy,
    "mobilenet_v2_torch": _mobilenet_v2_torch,
    "blazeface_tflite": _blazeface_tflite,
}
