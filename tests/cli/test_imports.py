"""What a worker or `darkroom --help` needs installed: not the `build` extra (onnx, tflite2onnx,
dlib) nor the `samples` one (scikit-image). Run with those imports blocked, as in a wheel
installed without extras."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKED = ("onnx", "tflite2onnx", "dlib", "skimage")
PRELUDE = f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n"


@pytest.mark.parametrize(
    "code",
    [
        "from streams.cli.app import main; sys.argv = ['darkroom', '--help']; main()",
        "from streams.cli.app import main; sys.argv = ['darkroom', 'config']; main()",
        "from streams.cli.app import main; sys.argv = ['darkroom', 'models', 'list']; main()",
        "import streams.worker.app",
    ],
)
def test_runs_without_the_build_and_samples_extras(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
