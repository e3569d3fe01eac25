"""Reading the model repository stays cheap (the layer rule itself is `lint-imports`, in
`make lint`)."""

from __future__ import annotations

import subprocess
import sys

from streams.config import REPO_ROOT


def test_reading_manifests_does_not_import_the_converters() -> None:
    # Workers read manifests; onnx (the converters' dependency) is only for building.
    code = (
        "import sys, streams.models.repository, streams.engine.runners; "
        "sys.exit('onnx' in sys.modules or 'streams.models.converters.mobilenet_v2' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False).returncode == 0
