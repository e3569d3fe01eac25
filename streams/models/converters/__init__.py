"""Converters: how a model's source file becomes ``model.onnx`` (run by `darkroom models build`).

``CONVERTERS`` is the one list of converter names: a manifest's ``source.converter`` is checked
against its keys, so a new converter is a module with ``convert(source, target)`` plus its line
here. The modules are imported on first use: they need onnx (and tflite2onnx), which only
building needs, while every worker reads manifests.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

Converter = Callable[[Path, Path], None]


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _module(name: str) -> Converter:
    """``streams.models.converters.<name>.convert``, imported when a build first calls it."""

    def convert(source: Path, target: Path) -> None:
        module = importlib.import_module(f"{__name__}.{name}")
        module.convert(source, target)

    return convert


CONVERTERS: dict[str, Converter] = {
    "copy": _copy,
    "mobilenet_v2_torch": _module("mobilenet_v2"),
    "blazeface_tflite": _module("blazeface_tflite"),
    "dlib_resnet": _module("dlib_resnet"),
}
